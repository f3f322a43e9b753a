# syntax=docker/dockerfile:1
# kstreams-operator as a static binary on distroless. Build: docker build -t kstreams-operator .
#
# Static, because the runtime image has no libc. The awkward dependency is rdkafka: its
# `cmake-build` feature compiles librdkafka (needs cmake, make, a C/C++ compiler) and its `ssl`
# feature links the system OpenSSL through openssl-sys. A musl target on Debian would need an
# OpenSSL built for musl, which Debian does not ship (and rdkafka's `ssl-vendored` feature is
# not used: it is not in Cargo.lock). Alpine is musl-native and ships static OpenSSL and zlib,
# so the builder is Alpine and the host target (x86_64- or aarch64-unknown-linux-musl) links
# everything statically.

FROM rust:1-alpine AS build
RUN apk add --no-cache musl-dev gcc g++ make cmake perl pkgconf linux-headers \
      openssl-dev openssl-libs-static zlib-dev zlib-static
ENV OPENSSL_STATIC=1 \
    OPENSSL_LIB_DIR=/usr/lib \
    OPENSSL_INCLUDE_DIR=/usr/include \
    PKG_CONFIG_ALL_STATIC=1 \
    CARGO_NET_RETRY=5
WORKDIR /src
COPY . .
# A dynamically linked binary has an ELF interpreter: refuse it.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p kstreams-operator \
 && mkdir -p /out \
 && cp target/release/kstreams-operator /out/ \
 && if readelf -l /out/kstreams-operator | grep -q 'Requesting program interpreter'; then \
      echo "kstreams-operator is not static" >&2; exit 1; \
    fi \
 && /out/kstreams-operator --version

FROM gcr.io/distroless/static-debian12:nonroot
# The statically linked OpenSSL looks for CAs at Alpine's path; point it at distroless' bundle.
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/kstreams-operator /kstreams-operator
USER 65532:65532
ENTRYPOINT ["/kstreams-operator"]
CMD ["run"]
