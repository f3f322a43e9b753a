package dev.kstreams.examples.wordcount;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.CloseOptions;
import org.apache.kafka.streams.CloseOptions.GroupMembershipOperation;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.state.HostInfo;

/**
 * Counts the words of the lines on the input topic into the persistent store {@code counts}
 * and writes every updated count to the output topic (String word -> Long count).
 *
 * <p>Environment knobs (besides the settings {@link StreamsSettings} reads):
 * <ul>
 *   <li>{@code WORDCOUNT_INPUT_TOPIC} (default {@code text-lines}),
 *       {@code WORDCOUNT_OUTPUT_TOPIC} (default {@code word-counts}).</li>
 *   <li>{@code WORDCOUNT_RESTORE_DELAY_MS} (default 0): sleep this long after every restored
 *       batch, to slow restores down for tests and benchmarks. A batch is at most
 *       {@code restore.consumer.max.poll.records} records (default 1000): set that small as
 *       well (e.g. in the StreamApp's {@code spec.config}). Only the state updater thread
 *       sleeps; see {@link RestoreLog}.</li>
 *   <li>{@code WORDCOUNT_WIPE_STATE=true}: delete everything under {@code state.dir} before Kafka
 *       Streams starts, as if the pod had moved to a fresh volume; prints
 *       {@code WIPED dir=<state.dir> entries=<n>}. A comma-separated list of pod names instead
 *       of {@code true} wipes only on those pods ({@code POD_NAME}), so one instance of a
 *       StatefulSet can start wiped.</li>
 *   <li>{@code WORDCOUNT_START_DELAY_MS} (default 0): wait this long before Kafka Streams
 *       starts (after any wipe), as a slow pod start would (image pull, volume attach, a node
 *       replaced): a restart that outlasts {@code session.timeout.ms}. Prints
 *       {@code START-DELAY ms=<n>}.</li>
 *   <li>{@code WORDCOUNT_LEAVE_GROUP_ON_CLOSE=true|false}: whether a clean shutdown leaves the
 *       consumer group. Default: leave when the instance is a dynamic member (no
 *       {@code group.instance.id}), stay when it is a static one. See {@link #closeOptions}.</li>
 * </ul>
 *
 * <p>Standard output: {@code STATE <old> -> <new>}, {@code CONFIG ...}, the restore lines of
 * {@link RestoreLog}, {@code WIPED ...} and {@code SHUTDOWN leaveGroup=<bool> clean=<bool>}.
 */
public final class WordCountApp {
    private static final Pattern NON_WORD = Pattern.compile("\\W+");
    // Long enough to commit and flush the stores, well within the pod's grace period (300 s).
    private static final Duration CLOSE_TIMEOUT = Duration.ofSeconds(30);

    private WordCountApp() {}

    static Topology topology(String input, String output) {
        StreamsBuilder builder = new StreamsBuilder();
        builder.<String, String>stream(input)
                .flatMapValues(line -> line == null
                        ? List.<String>of()
                        : Arrays.asList(NON_WORD.split(line.toLowerCase(Locale.ROOT))))
                .filter((key, word) -> !word.isEmpty())
                .groupBy((key, word) -> word)
                .count(Materialized.as("counts"))
                .toStream()
                .to(output, Produced.with(Serdes.String(), Serdes.Long()));
        return builder.build();
    }

    /**
     * How a clean shutdown closes Kafka Streams. A plain {@code close(Duration)} never leaves
     * the group (classic protocol): the group only notices the member is gone when its
     * {@code session.timeout.ms} (45 s) expires, and until then the departed instance's tasks
     * are processed by nobody. {@code LEAVE_GROUP} sends a LeaveGroup request on close, so the
     * group rebalances at once and the tasks move to the standbys and the other instances.
     *
     * <p>Kafka Streams 4.4.0 (as 4.3): {@code KafkaStreams.CloseOptions#leaveGroup} (KIP-812) is
     * deprecated since 4.2 for {@link CloseOptions} (KIP-1153); 4.4 adds a {@code DEFAULT}
     * operation, which a plain {@code close()} uses, so the app keeps naming the operation
     * explicitly. With the classic protocol LEAVE_GROUP works for dynamic and static members
     * alike (the consumer sends LeaveGroup by member id, and the broker removes a static member
     * that way too), but for a static member leaving throws away what static membership is for
     * (a restart within {@code session.timeout.ms} without a rebalance), so the default stays in
     * the group when {@code group.instance.id} is set.
     * With {@code group.protocol=streams} (KIP-1071) the member always leaves.
     */
    static CloseOptions closeOptions(boolean leaveGroup) {
        return CloseOptions.timeout(CLOSE_TIMEOUT).withGroupMembershipOperation(
                leaveGroup ? GroupMembershipOperation.LEAVE_GROUP : GroupMembershipOperation.REMAIN_IN_GROUP);
    }

    /** Deletes what is under {@code dir} (not {@code dir} itself); returns the entries removed. */
    static long wipe(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            return 0;
        }
        long removed = 0;
        try (Stream<Path> top = Files.list(dir)) {
            for (Path entry : (Iterable<Path>) top::iterator) {
                try (Stream<Path> tree = Files.walk(entry)) {
                    tree.sorted(Comparator.reverseOrder()).forEach(p -> {
                        try {
                            Files.delete(p);
                        } catch (IOException e) {
                            throw new UncheckedIOException(e);
                        }
                    });
                }
                removed++;
            }
        }
        return removed;
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> env = System.getenv();
        String input = env.getOrDefault("WORDCOUNT_INPUT_TOPIC", "text-lines");
        String output = env.getOrDefault("WORDCOUNT_OUTPUT_TOPIC", "word-counts");
        Properties props = StreamsSettings.load(env);
        long restoreDelayMs = Long.parseLong(env.getOrDefault("WORDCOUNT_RESTORE_DELAY_MS", "0").trim());
        boolean isStatic = Stream.of("group.instance.id", StreamsConfig.consumerPrefix("group.instance.id"),
                        StreamsConfig.mainConsumerPrefix("group.instance.id"))
                .anyMatch(k -> !props.getProperty(k, "").isEmpty());
        String leaveEnv = env.getOrDefault("WORDCOUNT_LEAVE_GROUP_ON_CLOSE", "").trim();
        boolean leaveGroup = leaveEnv.isEmpty() ? !isStatic : Boolean.parseBoolean(leaveEnv);
        String wipe = env.getOrDefault("WORDCOUNT_WIPE_STATE", "").trim();
        if (wipe.equalsIgnoreCase("true")
                || Arrays.asList(wipe.split("\\s*,\\s*")).contains(env.getOrDefault("POD_NAME", "\0"))) {
            // Before the KafkaStreams constructor, which locks the state directory.
            String dir = props.getProperty(StreamsConfig.STATE_DIR_CONFIG,
                    System.getProperty("java.io.tmpdir") + "/kafka-streams");
            System.out.println("WIPED dir=" + dir + " entries=" + wipe(Path.of(dir)));
        }
        long startDelayMs = Long.parseLong(env.getOrDefault("WORDCOUNT_START_DELAY_MS", "0").trim());
        if (startDelayMs > 0) {
            System.out.println("START-DELAY ms=" + startDelayMs);
            Thread.sleep(startDelayMs);
        }
        KafkaStreams streams = new KafkaStreams(topology(input, output), props);
        RestoreLog restoreLog = new RestoreLog(restoreDelayMs);
        streams.setGlobalStateRestoreListener(restoreLog);
        streams.setStandbyUpdateListener(restoreLog);
        // application.server (set with spec.interactiveQueries) is where the other instances
        // reach this one: serve there, on the pod's own address when the pod says it
        // (POD_IP), else on every address. Without it there is nothing to serve.
        String server = props.getProperty(StreamsConfig.APPLICATION_SERVER_CONFIG, "");
        if (!server.isEmpty()) {
            HostInfo self = HostInfo.buildFromEndpoint(server);
            HttpApi.start(streams, "counts", env.getOrDefault("POD_IP", "0.0.0.0"), self.port(), self);
        }

        CountDownLatch finished = new CountDownLatch(1);
        streams.setStateListener((now, before) -> {
            System.out.println("STATE " + before + " -> " + now);
            if (now == KafkaStreams.State.NOT_RUNNING || now == KafkaStreams.State.ERROR) {
                finished.countDown();
            }
        });
        // SIGTERM runs this: a clean close commits offsets and flushes the stores with their
        // changelog offsets, so the next start on the same volume replays no changelog, and
        // (dynamic members) leaves the group so that the others take over at once.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            boolean clean = streams.close(closeOptions(leaveGroup));
            System.out.println("SHUTDOWN leaveGroup=" + leaveGroup + " clean=" + clean);
            // close() returns before the state listener has seen NOT_RUNNING: without this
            // wait the JVM may halt before the last transition is logged.
            try {
                finished.await(5, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "wordcount-shutdown"));

        streams.start();
        finished.await();
        if (streams.state() == KafkaStreams.State.ERROR) {
            // A non-zero exit lets the kubelet restart the container.
            streams.close(closeOptions(leaveGroup));
            System.exit(1);
        }
    }
}
