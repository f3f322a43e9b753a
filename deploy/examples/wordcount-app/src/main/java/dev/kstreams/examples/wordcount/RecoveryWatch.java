package dev.kstreams.examples.wordcount;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.TopicPartition;

/**
 * Watches a Kafka Streams app from outside, through the Admin API, to measure what a restart
 * or a rollout costs: it polls the consumer group (state, members) and, for every partition the
 * group commits (the input and repartition topics: the tasks' source partitions), the committed
 * and the end offset, every {@code WATCH_INTERVAL_MS} (default 200).
 *
 * <p>Usage: {@code java -cp wordcount.jar dev.kstreams.examples.wordcount.RecoveryWatch BOOTSTRAP GROUP [SECONDS]}
 * (runs SECONDS, default until SIGTERM, then prints its summary). Standard output, one line each,
 * {@code t} = seconds since the watch started, {@code at} = epoch millis:
 *
 * <pre>
 * GROUP t=12.345 state=PreparingRebalance members=2 clients=wordcount-0,wordcount-2 at=...
 * OFFSETS t=13.001 lag=42 text-lines-0=1200/1210 wordcount-counts-repartition-0=5000/5004 ... at=...
 * PAUSE partition=text-lines-0 ms=15400 from=10.100 to=25.500 at=...
 * SUMMARY-PARTITION partition=text-lines-0 longestPauseMs=15400 pauses=1
 * SUMMARY seconds=120.0 rebalances=2 transitions=4 longestPauseMs=15400 partition=text-lines-0 pauseThresholdMs=3000
 * </pre>
 *
 * <ul>
 *   <li>{@code GROUP}: whenever the group's state or its member set changes.</li>
 *   <li>{@code OFFSETS}: once a second while anything changed: per partition committed/end.</li>
 *   <li>A partition's pause: from the first poll that saw records waiting in it (end offset
 *       above the committed one) to the poll that saw its committed offset advance. With
 *       {@code commit.interval.ms=1000} the normal pause is about a second; {@code PAUSE} lines
 *       report those longer than {@code WATCH_PAUSE_THRESHOLD_MS} (default 3000).</li>
 *   <li>{@code rebalances}: how often the group left {@code Stable} (or changed its members,
 *       by {@code group.instance.id} if static, else member id, between two polls that both
 *       saw it Stable); {@code transitions}: state changes seen.
 *       A rebalance shorter than the poll interval can go unseen; the members' own
 *       {@code generationId=} log lines are exact.</li>
 * </ul>
 */
public final class RecoveryWatch {
    private static final class Partition {
        long committed = -1;
        long end = -1;
        long waitingSince = -1;
        long longest;
        int pauses;
    }

    private final Admin admin;
    private final String group;
    private final long pauseThresholdMs;
    private final long origin = System.currentTimeMillis();
    private final Map<TopicPartition, Partition> partitions = new TreeMap<>(
            (a, b) -> a.topic().equals(b.topic()) ? Integer.compare(a.partition(), b.partition()) : a.topic().compareTo(b.topic()));
    private GroupState lastState;
    private Set<String> lastMembers = Set.of();
    private int rebalances;
    private int transitions;
    private long lastOffsetsLine;
    private boolean offsetsChanged;

    private RecoveryWatch(Admin admin, String group, long pauseThresholdMs) {
        this.admin = admin;
        this.group = group;
        this.pauseThresholdMs = pauseThresholdMs;
    }

    private String t(long now) {
        return String.format("%.3f", (now - origin) / 1000.0);
    }

    private void pollGroup(long now) throws Exception {
        ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).describedGroups().get(group)
                .get(5, TimeUnit.SECONDS);
        GroupState state = d.groupState();
        // A static member that restarts gets a new member id without a rebalance: it is the
        // same member by its group.instance.id.
        Set<String> members = d.members().stream().map(m -> m.groupInstanceId().orElse(m.consumerId()))
                .collect(Collectors.toCollection(TreeSet::new));
        boolean stateChanged = state != lastState;
        boolean membersChanged = !members.equals(lastMembers);
        if (lastState != null) {
            if (stateChanged) {
                transitions++;
                if (lastState == GroupState.STABLE) {
                    rebalances++;
                }
            } else if (membersChanged && state == GroupState.STABLE) {
                // A whole rebalance between two polls.
                rebalances++;
            }
        }
        if (stateChanged || membersChanged) {
            String clients = d.members().stream().map(MemberDescription::clientId).sorted().collect(Collectors.joining(","));
            System.out.println("GROUP t=" + t(now) + " state=" + state + " members=" + members.size() + " clients="
                    + (clients.isEmpty() ? "-" : clients) + " at=" + now);
        }
        lastState = state;
        lastMembers = members;
    }

    private void pollOffsets(long now) throws Exception {
        Map<TopicPartition, OffsetAndMetadata> committed = admin.listConsumerGroupOffsets(group)
                .partitionsToOffsetAndMetadata().get(5, TimeUnit.SECONDS);
        Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
        committed.keySet().forEach(tp -> latest.put(tp, OffsetSpec.latest()));
        Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> ends = latest.isEmpty()
                ? Map.of()
                : admin.listOffsets(latest).all().get(5, TimeUnit.SECONDS);
        for (Map.Entry<TopicPartition, OffsetAndMetadata> e : committed.entrySet()) {
            if (e.getValue() == null || !ends.containsKey(e.getKey())) {
                continue;
            }
            Partition p = partitions.computeIfAbsent(e.getKey(), k -> new Partition());
            long c = e.getValue().offset();
            long end = ends.get(e.getKey()).offset();
            if (c != p.committed || end != p.end) {
                offsetsChanged = true;
            }
            if (p.committed >= 0 && c > p.committed && p.waitingSince >= 0) {
                endPause(e.getKey(), p, now);
            }
            p.committed = c;
            p.end = end;
            if (end > c && p.waitingSince < 0) {
                p.waitingSince = now;
            } else if (end <= c) {
                p.waitingSince = -1;
            }
        }
        if (offsetsChanged && now - lastOffsetsLine >= 1000) {
            StringBuilder line = new StringBuilder("OFFSETS t=").append(t(now));
            long lag = 0;
            StringBuilder each = new StringBuilder();
            for (Map.Entry<TopicPartition, Partition> e : partitions.entrySet()) {
                lag += Math.max(0, e.getValue().end - e.getValue().committed);
                each.append(' ').append(e.getKey()).append('=').append(e.getValue().committed).append('/').append(e.getValue().end);
            }
            line.append(" lag=").append(lag).append(each).append(" at=").append(now);
            System.out.println(line);
            lastOffsetsLine = now;
            offsetsChanged = false;
        }
    }

    private void endPause(TopicPartition tp, Partition p, long now) {
        long ms = now - p.waitingSince;
        p.longest = Math.max(p.longest, ms);
        if (ms >= pauseThresholdMs) {
            p.pauses++;
            System.out.println("PAUSE partition=" + tp + " ms=" + ms + " from=" + t(p.waitingSince) + " to=" + t(now) + " at=" + now);
        }
        p.waitingSince = -1;
    }

    private void summary() {
        long now = System.currentTimeMillis();
        long longest = 0;
        String where = "-";
        for (Map.Entry<TopicPartition, Partition> e : partitions.entrySet()) {
            Partition p = e.getValue();
            if (p.waitingSince >= 0) {
                // Still waiting when the watch ends: that pause counts up to now.
                endPause(e.getKey(), p, now);
            }
            System.out.println("SUMMARY-PARTITION partition=" + e.getKey() + " longestPauseMs=" + p.longest + " pauses=" + p.pauses);
            if (p.longest > longest) {
                longest = p.longest;
                where = e.getKey().toString();
            }
        }
        System.out.println(String.format("SUMMARY seconds=%.1f rebalances=%d transitions=%d longestPauseMs=%d partition=%s pauseThresholdMs=%d",
                (now - origin) / 1000.0, rebalances, transitions, longest, where, pauseThresholdMs));
        System.out.flush();
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: RecoveryWatch BOOTSTRAP GROUP [SECONDS]");
            System.exit(2);
        }
        Map<String, String> env = System.getenv();
        long interval = Long.parseLong(env.getOrDefault("WATCH_INTERVAL_MS", "200"));
        long threshold = Long.parseLong(env.getOrDefault("WATCH_PAUSE_THRESHOLD_MS", "3000"));
        long deadline = args.length > 2 ? System.currentTimeMillis() + (long) (Double.parseDouble(args[2]) * 1000) : Long.MAX_VALUE;
        Map<String, Object> conf = new HashMap<>();
        conf.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        conf.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 5000);
        conf.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 10000);
        AtomicBoolean running = new AtomicBoolean(true);
        CountDownLatch done = new CountDownLatch(1);
        Thread main = Thread.currentThread();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            running.set(false);
            main.interrupt();
            try {
                done.await(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "watch-shutdown"));
        try (Admin admin = Admin.create(conf)) {
            RecoveryWatch watch = new RecoveryWatch(admin, args[1], threshold);
            System.out.println("WATCH group=" + args[1] + " intervalMs=" + interval + " at=" + watch.origin);
            while (running.get() && System.currentTimeMillis() < deadline) {
                long now = System.currentTimeMillis();
                try {
                    watch.pollGroup(now);
                    watch.pollOffsets(now);
                } catch (InterruptedException e) {
                    break;
                } catch (Exception e) {
                    System.out.println("WATCH-ERROR t=" + watch.t(now) + " " + e + " at=" + now);
                }
                long sleep = interval - (System.currentTimeMillis() - now);
                if (sleep > 0) {
                    try {
                        Thread.sleep(sleep);
                    } catch (InterruptedException e) {
                        break;
                    }
                }
            }
            Thread.interrupted();
            watch.summary();
        } finally {
            done.countDown();
        }
    }
}
