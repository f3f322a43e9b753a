package dev.kstreams.examples.wordcount;

import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

import org.apache.kafka.common.serialization.Serdes;
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

    public static void main(String[] args) throws Exception {
        Map<String, String> env = System.getenv();
        String input = env.getOrDefault("WORDCOUNT_INPUT_TOPIC", "text-lines");
        String output = env.getOrDefault("WORDCOUNT_OUTPUT_TOPIC", "word-counts");
        Properties props = StreamsSettings.load(env);
        KafkaStreams streams = new KafkaStreams(topology(input, output), props);
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
        // changelog offsets, so the next start on the same volume replays no changelog.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            streams.close(CLOSE_TIMEOUT);
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
            streams.close(CLOSE_TIMEOUT);
            System.exit(1);
        }
    }
}
