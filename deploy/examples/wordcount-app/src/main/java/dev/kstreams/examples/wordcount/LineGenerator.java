package dev.kstreams.examples.wordcount;

import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Writes lines of text to the word count's input topic at a steady rate, so the demo's app
 * has work: {@code GENERATOR_TOPIC} (default text-lines), {@code GENERATOR_LINES_PER_SECOND}
 * (default 5), {@code KAFKA_BOOTSTRAP_SERVERS}.
 */
public final class LineGenerator {
    private static final List<String> LINES = List.of(
            "the quick brown fox jumps over the lazy dog",
            "a stream is a table in motion and a table is a stream at rest",
            "state lives in rocksdb and its changelog lives in kafka",
            "standby replicas keep warm copies of the state",
            "every rebalance moves tasks and every move restores state");

    private LineGenerator() {}

    public static void main(String[] args) throws InterruptedException {
        Map<String, String> env = System.getenv();
        String topic = env.getOrDefault("GENERATOR_TOPIC", "text-lines");
        double rate = Double.parseDouble(env.getOrDefault("GENERATOR_LINES_PER_SECOND", "5"));
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, env.getOrDefault("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"));
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        props.put(ProducerConfig.LINGER_MS_CONFIG, "50");
        AtomicBoolean running = new AtomicBoolean(true);
        Thread main = Thread.currentThread();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            running.set(false);
            try {
                main.join(5000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "generator-shutdown"));
        long pauseNanos = (long) (1_000_000_000L / Math.max(rate, 0.001));
        Random random = new Random();
        long sent = 0;
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
            System.out.println("GENERATOR writing " + rate + " lines/s to " + topic);
            long next = System.nanoTime();
            while (running.get()) {
                String line = LINES.get(random.nextInt(LINES.size()));
                producer.send(new ProducerRecord<>(topic, Long.toString(sent), line));
                sent++;
                if (sent % 100 == 0) {
                    System.out.println("GENERATOR sent " + sent + " lines");
                }
                next += pauseNanos;
                long wait = next - System.nanoTime();
                if (wait > 0) {
                    Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
                }
            }
        }
        System.out.println("GENERATOR stopped after " + sent + " lines");
    }
}
