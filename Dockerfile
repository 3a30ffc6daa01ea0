# Multi-stage build of the operator image: compile in the Rust image, run on distroless as a
# non-root user. Build: docker build -t ghcr.io/appstack-dev/appstack-operator:0.1.0 .
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so that a source change does not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked && rm -rf src
COPY src ./src
COPY examples/books.yaml ./examples/books.yaml
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin appstack-operator

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/appstack-operator /usr/local/bin/appstack-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/appstack-operator"]
CMD ["run"]
