# writ as a container image: one static (musl) binary on a distroless base, no shell, no
# libc, running as an unprivileged user.
#
#   docker build -t writ .
#   docker run --rm writ --version
#   docker run --rm -it writ dev                 # the whole system, inside the container
#   docker run --rm -p 7443:7443 -v writ-data:/data writ \
#     server --data-dir /data --listen 0.0.0.0:7443 --trust-domain example.org
#
# The build stage runs packaging/build-static.sh, which CI can run without docker.

FROM rust:1.89-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
ENV CARGO_TARGET_DIR=/target
RUN bash packaging/build-static.sh /out/writ

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/writ /usr/local/bin/writ
# writ dev and a writ server without --data-dir need a writable TMPDIR; distroless has /tmp.
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/writ"]
CMD ["dev"]
