# syntax=docker/dockerfile:1
# kstreams-operator as a static binary on distroless. Build: docker build -t kstreams-operator .
#
# The same recipe as e2e/image.sh, which builds and checks the image here without an engine:
# a musl build with the crate's `static` feature (OpenSSL and zlib compiled from source by
# openssl-src and libz-sys, librdkafka by cmake), so the runtime image needs no libc.

FROM rust:1-bookworm AS build
# librdkafka's sources include curl/curl.h even with curl off; musl-gcc does not search the
# host's headers, so the curl headers get their own include directory.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      musl-tools cmake libcurl4-openssl-dev \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /opt/musl-include \
 && ln -s /usr/include/x86_64-linux-gnu/curl /opt/musl-include/curl \
 && rustup target add x86_64-unknown-linux-musl
ENV CC_x86_64_unknown_linux_musl=musl-gcc \
    CXX_x86_64_unknown_linux_musl=g++ \
    CFLAGS_x86_64_unknown_linux_musl=-I/opt/musl-include \
    CARGO_PROFILE_RELEASE_STRIP=symbols \
    CARGO_NET_RETRY=5
WORKDIR /src
COPY . .
# A dynamically linked binary has an ELF interpreter: refuse it.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target x86_64-unknown-linux-musl \
      -p kstreams-operator --features static \
 && mkdir -p /out \
 && cp target/x86_64-unknown-linux-musl/release/kstreams-operator /out/ \
 && if readelf -l /out/kstreams-operator | grep -q 'Requesting program interpreter'; then \
      echo "kstreams-operator is not static" >&2; exit 1; \
    fi \
 && /out/kstreams-operator --version

FROM gcr.io/distroless/static-debian12:nonroot
# The vendored OpenSSL's default CA path is fixed at build time; name distroless' bundle.
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/kstreams-operator /kstreams-operator
USER 65532:65532
ENTRYPOINT ["/kstreams-operator"]
CMD ["run"]
