package dev.kstreams.examples.wordcount;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.StreamsConfig;

/**
 * The Kafka Streams settings as kstreams-operator hands them to a pod: the shared
 * {@code streams.properties} file, then {@code KAFKA_STREAMS_*} environment variables on top
 * (the per-pod ones, such as {@code client.id}, only exist there).
 */
final class StreamsSettings {
    static final String ENV_PREFIX = "KAFKA_STREAMS_";
    static final String CONFIG_FILE_ENV = ENV_PREFIX + "CONFIG_FILE";
    static final String DEFAULT_CONFIG_FILE = "/etc/kafka-streams/streams.properties";

    private StreamsSettings() {}

    static Properties load(Map<String, String> env) throws IOException {
        Properties props = new Properties();
        props.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class.getName());
        props.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class.getName());

        Path file = Path.of(env.getOrDefault(CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE));
        if (Files.isRegularFile(file)) {
            try (InputStream in = Files.newInputStream(file)) {
                props.load(in);
            }
            System.out.println("CONFIG loaded " + file);
        } else {
            System.out.println("CONFIG no file at " + file + ", environment only");
        }

        env.forEach((name, value) -> {
            if (name.startsWith(ENV_PREFIX) && !name.equals(CONFIG_FILE_ENV)) {
                props.put(propertyName(name), value);
            }
        });
        return props;
    }

    /**
     * {@code KAFKA_STREAMS_CLIENT_ID} -> {@code client.id}. Lossy: {@code _} and {@code -} in
     * a property name both became {@code _}, so such properties must come from the file.
     */
    static String propertyName(String envName) {
        return envName.substring(ENV_PREFIX.length()).toLowerCase(Locale.ROOT).replace('_', '.');
    }
}
