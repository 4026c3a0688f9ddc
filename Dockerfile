# Debian 12's own NGINX (1.22.1) with the module installed from the package that
# scripts/package builds, exactly as CI does (scripts/test): build stage = `scripts/package`,
# image = `apt-get install ./<deb>` (which pulls in Debian's nginx, the ABI the package names).
# The module is enabled by /etc/nginx/modules-enabled/50-mod-http-auth-jwt.conf; mount a
# configuration that includes that directory, as Debian's default nginx.conf does:
#   docker build -t nginx-auth-jwt .
#   docker run -p 8000:8000 -v $PWD/nginx.conf:/etc/nginx/nginx.conf:ro nginx-auth-jwt
# (The repository's CI has no Docker engine: it runs these same two steps on the host.)
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# Installs nginx-dev and the build packages, builds against Debian's NGINX tree, prints the path.
RUN scripts/package | tail -n 1 > /tmp/deb-path \
    && cp "$(cat /tmp/deb-path)" /libnginx-mod-http-auth-jwt.deb

FROM debian:bookworm-slim
COPY --from=build /libnginx-mod-http-auth-jwt.deb /tmp/
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates /tmp/libnginx-mod-http-auth-jwt.deb \
    && rm -rf /var/lib/apt/lists/* /tmp/libnginx-mod-http-auth-jwt.deb \
    && nginx -t
COPY nginx-conf/ /usr/share/doc/libnginx-mod-http-auth-jwt/examples/
EXPOSE 8000
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
