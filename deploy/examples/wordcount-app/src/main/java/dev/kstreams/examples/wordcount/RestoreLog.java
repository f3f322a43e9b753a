package dev.kstreams.examples.wordcount;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.streams.processor.StandbyUpdateListener;
import org.apache.kafka.streams.processor.StateRestoreListener;
import org.apache.kafka.streams.processor.TaskId;

/**
 * What this instance restored, as Kafka Streams reports it: one line on standard output per
 * changelog partition and event. The format is stable (tests and {@code e2e/bench-recovery.sh}
 * grep it): a keyword, then space-separated {@code key=value} fields in this order, the last
 * one always {@code at=<epoch millis>}. {@code partition} is the changelog partition as
 * {@code <topic>-<n>} (e.g. {@code wordcount-counts-changelog-2}); in this topology its number
 * is the task's partition.
 *
 * <pre>
 * RESTORE-START store=counts partition=wordcount-counts-changelog-2 start=0 end=12345 at=1764700000000
 * RESTORED store=counts partition=wordcount-counts-changelog-2 records=12345 ms=2310 at=1764700002310
 * RESTORE-SUSPENDED store=counts partition=wordcount-counts-changelog-2 records=500 ms=120 at=...
 * RESTORED-TOTAL partitions=3 records=36000 suspended=0 suspendedRecords=0 at=...
 * STANDBY-START store=counts partition=wordcount-counts-changelog-1 start=9000 at=...
 * STANDBY-CAUGHT-UP store=counts partition=wordcount-counts-changelog-1 loaded=3000 ms=850 at=...
 * STANDBY-SUSPENDED store=counts partition=wordcount-counts-changelog-1 offset=11999 end=12000 lag=1 reason=PROMOTED at=...
 * </pre>
 *
 * <ul>
 *   <li>{@code RESTORE-START}: an active task starts restoring; {@code start}/{@code end} are
 *       the changelog offsets it restores from (inclusive) and to (exclusive).</li>
 *   <li>{@code RESTORED}: that restore finished: {@code records} restored, {@code ms} since its
 *       {@code RESTORE-START} (absent start: {@code ms=-1}).</li>
 *   <li>{@code RESTORE-SUSPENDED}: the task moved away before it finished (records restored
 *       up to then).</li>
 *   <li>{@code RESTORED-TOTAL}: follows every {@code RESTORED} and {@code RESTORE-SUSPENDED}
 *       line: running totals since the process started ({@code partitions} and
 *       {@code records} of finished restores, {@code suspended} and {@code suspendedRecords}
 *       of suspended ones).</li>
 *   <li>{@code STANDBY-START}: a standby task starts following the changelog from
 *       {@code start} (standbys and KIP-441 warm-up replicas alike);
 *       {@code STANDBY-CAUGHT-UP}: the first time after its start that it reached the
 *       changelog's end: {@code loaded} records in {@code ms} (a fresh warm-up replica's whole
 *       load, a standby's catch-up after a restart); {@code STANDBY-SUSPENDED}: it stopped, {@code reason=PROMOTED} (it
 *       became this instance's active task: {@code lag} records were left to restore) or
 *       {@code MIGRATED} (it moved to another instance); {@code offset}, {@code end} and
 *       {@code lag} are {@code -1} when Kafka Streams did not know them yet.</li>
 * </ul>
 *
 * <p>Threading (Kafka Streams 4.3 and 4.4): these callbacks run on the state updater thread of each
 * stream thread ({@code <client.id>-StreamThread-<n>-StateUpdater-1}), which restores the
 * active tasks and updates the standbys of that stream thread; the stream thread itself keeps
 * polling and processing its running tasks meanwhile. {@link #onBatchRestored} is called after
 * every batch of at most {@code restore.consumer.max.poll.records} records, and
 * {@link #onBatchLoaded} after every standby batch, so a sleep there
 * ({@code WORDCOUNT_RESTORE_DELAY_MS}, in both: a warm-up replica loads a store like a restore
 * does) slows state loading without blocking the stream thread's polls: no
 * {@code max.poll.interval.ms} expiry, no rebalance. It does delay the state updater's handling
 * of task additions and removals by up to one sleep, so keep it well under a second. The listener is shared by all threads: its counters are thread-safe, its lines
 * whole {@code println}s.
 */
final class RestoreLog implements StateRestoreListener, StandbyUpdateListener {
    private final long delayMs;
    private final Map<TopicPartition, Long> started = new ConcurrentHashMap<>();
    /** Standby partitions not yet caught up since their start: [start nanos, records loaded]. */
    private final Map<TopicPartition, long[]> loading = new ConcurrentHashMap<>();
    private long partitions;
    private long records;
    private long suspended;
    private long suspendedRecords;

    /** {@code delayMs}: sleep after every restored batch (0: none). */
    RestoreLog(long delayMs) {
        this.delayMs = delayMs;
    }

    private static String p(TopicPartition tp) {
        return tp.topic() + "-" + tp.partition();
    }

    private static void line(String text) {
        System.out.println(text + " at=" + System.currentTimeMillis());
    }

    @Override
    public void onRestoreStart(TopicPartition tp, String store, long startingOffset, long endingOffset) {
        started.put(tp, System.nanoTime());
        line("RESTORE-START store=" + store + " partition=" + p(tp) + " start=" + startingOffset + " end=" + endingOffset);
    }

    @Override
    public void onBatchRestored(TopicPartition tp, String store, long batchEndOffset, long numRestored) {
        throttle();
    }

    private void throttle() {
        if (delayMs > 0) {
            try {
                Thread.sleep(delayMs);
            } catch (InterruptedException e) {
                // Shutting down: stop throttling, keep the flag for Kafka Streams.
                Thread.currentThread().interrupt();
            }
        }
    }

    @Override
    public void onRestoreEnd(TopicPartition tp, String store, long totalRestored) {
        String summary;
        synchronized (this) {
            partitions++;
            records += totalRestored;
            summary = totals();
        }
        line("RESTORED store=" + store + " partition=" + p(tp) + " records=" + totalRestored + " ms=" + elapsed(tp));
        line(summary);
    }

    @Override
    public void onRestoreSuspended(TopicPartition tp, String store, long totalRestored) {
        String summary;
        synchronized (this) {
            suspended++;
            suspendedRecords += totalRestored;
            summary = totals();
        }
        line("RESTORE-SUSPENDED store=" + store + " partition=" + p(tp) + " records=" + totalRestored + " ms=" + elapsed(tp));
        line(summary);
    }

    private String totals() {
        return "RESTORED-TOTAL partitions=" + partitions + " records=" + records + " suspended=" + suspended
                + " suspendedRecords=" + suspendedRecords;
    }

    private long elapsed(TopicPartition tp) {
        Long start = started.remove(tp);
        return start == null ? -1 : (System.nanoTime() - start) / 1_000_000;
    }

    @Override
    public void onUpdateStart(TopicPartition tp, String store, long startingOffset) {
        loading.put(tp, new long[] {System.nanoTime(), 0});
        line("STANDBY-START store=" + store + " partition=" + p(tp) + " start=" + startingOffset);
    }

    @Override
    public void onBatchLoaded(TopicPartition tp, String store, TaskId task, long batchEndOffset, long batchSize,
            long currentEndOffset) {
        // Not a line per batch (too many): one when the standby first reaches the end.
        long[] l = loading.get(tp);
        if (l != null) {
            l[1] += batchSize;
            if (currentEndOffset >= 0 && batchEndOffset + 1 >= currentEndOffset) {
                loading.remove(tp);
                line("STANDBY-CAUGHT-UP store=" + store + " partition=" + p(tp) + " loaded=" + l[1] + " ms="
                        + (System.nanoTime() - l[0]) / 1_000_000);
            }
        }
        throttle();
    }

    @Override
    public void onUpdateSuspended(TopicPartition tp, String store, long storeOffset, long currentEndOffset,
            SuspendReason reason) {
        loading.remove(tp);
        // Either offset may be unknown (-1), and so then is the lag.
        long lag = storeOffset < 0 || currentEndOffset < 0 ? -1 : Math.max(0, currentEndOffset - storeOffset - 1);
        line("STANDBY-SUSPENDED store=" + store + " partition=" + p(tp) + " offset=" + storeOffset + " end="
                + currentEndOffset + " lag=" + lag + " reason=" + reason);
    }
}
