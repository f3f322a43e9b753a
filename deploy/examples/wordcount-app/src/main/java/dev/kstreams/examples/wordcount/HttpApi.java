package dev.kstreams.examples.wordcount;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URLDecoder;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.Executors;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyQueryMetadata;
import org.apache.kafka.streams.StoreQueryParameters;
import org.apache.kafka.streams.state.HostInfo;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;

/**
 * The app's HTTP endpoint: {@code /ready} (200 while Kafka Streams is RUNNING, for the
 * readiness probe) and {@code /count/<word>}, an interactive query answered by the instance
 * that hosts the word's partition: another instance's words are fetched from it through its
 * {@code application.server} address.
 */
final class HttpApi {
    private final KafkaStreams streams;
    private final String store;
    private final HostInfo self;
    private final HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    private HttpApi(KafkaStreams streams, String store, HostInfo self) {
        this.streams = streams;
        this.store = store;
        this.self = self;
    }

    /** Serves on {@code bindHost:port}; {@code self} is this instance's application.server. */
    static HttpServer start(KafkaStreams streams, String store, String bindHost, int port, HostInfo self)
            throws IOException {
        HttpApi api = new HttpApi(streams, store, self);
        HttpServer server = HttpServer.create(new InetSocketAddress(bindHost, port), 16);
        server.createContext("/ready", api::ready);
        server.createContext("/count/", api::count);
        server.setExecutor(Executors.newFixedThreadPool(2));
        server.start();
        System.out.println("HTTP serving on " + bindHost + ":" + port + " as " + self);
        return server;
    }

    private void ready(HttpExchange ex) throws IOException {
        KafkaStreams.State state = streams.state();
        reply(ex, state == KafkaStreams.State.RUNNING ? 200 : 503, state + "\n");
    }

    private void count(HttpExchange ex) throws IOException {
        String word = URLDecoder.decode(ex.getRequestURI().getPath().substring("/count/".length()),
                StandardCharsets.UTF_8);
        KeyQueryMetadata meta = streams.queryMetadataForKey(store, word, Serdes.String().serializer());
        if (meta == null || meta.equals(KeyQueryMetadata.NOT_AVAILABLE)) {
            reply(ex, 503, "{\"error\":\"no metadata for " + word + " yet\"}\n");
            return;
        }
        HostInfo active = meta.activeHost();
        if (!active.equals(self)) {
            forward(ex, active, word);
            return;
        }
        try {
            ReadOnlyKeyValueStore<String, Long> counts = streams.store(
                    StoreQueryParameters.fromNameAndType(store, QueryableStoreTypes.<String, Long>keyValueStore()));
            Long count = counts.get(word);
            reply(ex, 200, "{\"word\":\"" + word + "\",\"count\":" + (count == null ? 0 : count)
                    + ",\"host\":\"" + self.host() + ":" + self.port() + "\"}\n");
        } catch (RuntimeException e) {
            reply(ex, 503, "{\"error\":\"" + e.getClass().getSimpleName() + "\"}\n");
        }
    }

    /** One hop only: the other instance answers from its own store or not at all. */
    private void forward(HttpExchange ex, HostInfo active, String word) throws IOException {
        URI uri = URI.create("http://" + active.host() + ":" + active.port() + "/count/"
                + URLEncoder.encode(word, StandardCharsets.UTF_8).replace("+", "%20"));
        try {
            HttpResponse<String> response = client.send(
                    HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(10)).GET().build(),
                    HttpResponse.BodyHandlers.ofString());
            reply(ex, response.statusCode(), response.body());
        } catch (IOException e) {
            reply(ex, 502, "{\"error\":\"" + uri + ": " + e + "\"}\n");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            reply(ex, 503, "{\"error\":\"interrupted\"}\n");
        }
    }

    private static void reply(HttpExchange ex, int code, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        ex.sendResponseHeaders(code, bytes.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(bytes);
        }
    }
}
