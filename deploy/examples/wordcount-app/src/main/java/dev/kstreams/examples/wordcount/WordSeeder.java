package dev.kstreams.examples.wordcount;

import java.util.Properties;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Gives the word count state: writes {@code words} distinct words ({@code w0000001},
 * {@code w0000002}, ...), {@code perLine} to a line, to the input topic, so the {@code counts}
 * store (and its changelog) holds at least that many keys. Run it with the app's jar:
 * {@code java -cp wordcount.jar dev.kstreams.examples.wordcount.WordSeeder BOOTSTRAP TOPIC WORDS [PER_LINE] [PREFIX]}
 * (PER_LINE default 100, PREFIX default {@code w}). Prints {@code SEEDED words=<n> lines=<n> ms=<n>}.
 */
public final class WordSeeder {
    private WordSeeder() {}

    public static void main(String[] args) {
        if (args.length < 3) {
            System.err.println("usage: WordSeeder BOOTSTRAP TOPIC WORDS [PER_LINE] [PREFIX]");
            System.exit(2);
        }
        String topic = args[1];
        long words = Long.parseLong(args[2]);
        int perLine = args.length > 3 ? Integer.parseInt(args[3]) : 100;
        String prefix = args.length > 4 ? args[4] : "w";
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        props.put(ProducerConfig.LINGER_MS_CONFIG, "20");
        props.put(ProducerConfig.BATCH_SIZE_CONFIG, "262144");
        long start = System.nanoTime();
        long lines = 0;
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
            StringBuilder line = new StringBuilder();
            for (long i = 1; i <= words; i++) {
                if (line.length() > 0) {
                    line.append(' ');
                }
                line.append(prefix).append(String.format("%07d", i));
                if (i % perLine == 0 || i == words) {
                    // Keyed by line number: the lines spread over the input partitions.
                    producer.send(new ProducerRecord<>(topic, Long.toString(lines), line.toString()));
                    lines++;
                    line.setLength(0);
                }
            }
            producer.flush();
        }
        System.out.println("SEEDED words=" + words + " lines=" + lines + " ms=" + (System.nanoTime() - start) / 1_000_000);
    }
}
