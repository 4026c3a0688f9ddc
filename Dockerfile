# Builds the module and the matching NGINX 1.28 (vendored by the nginx-src crate) and ships
# both in a slim Debian 12 image. Not exercised by CI (no Docker engine there).
#   docker build -t nginx-auth-jwt . && docker run -p 8000:8000 -v $PWD/conf:/etc/nginx nginx-auth-jwt
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
        libclang-dev libpcre2-dev zlib1g-dev libssl-dev pkg-config make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release \
    && mkdir -p /out/modules \
    && cp target/release/libngx_http_auth_jwt_module.so /out/modules/ngx_http_auth_jwt_module.so \
    && cp "$(ls -d target/release/build/nginx-sys-*/out/objs | head -1)/nginx" /out/nginx

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libssl3 libpcre2-8-0 zlib1g ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /usr/local/nginx/logs /usr/local/nginx/modules /etc/nginx
COPY --from=build /out/nginx /usr/local/nginx/sbin/nginx
COPY --from=build /out/modules/ /usr/local/nginx/modules/
COPY nginx-conf/ /usr/local/nginx/conf/examples/
EXPOSE 8000
STOPSIGNAL SIGQUIT
CMD ["/usr/local/nginx/sbin/nginx", "-p", "/usr/local/nginx/", "-c", "/etc/nginx/nginx.conf", "-g", "daemon off;"]
