# Stand-in for the official `redis` image where no image registry is reachable: Debian's Redis 7
# with the official image's contract (`redis-server ARGS` as the command, data in /data, reachable
# from other containers, `redis-cli ping`, port 6379). Built by `make images`.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server redis-tools tini \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && mkdir -p /data && chown redis:redis /data
COPY docker/standins/redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
USER redis
WORKDIR /data
VOLUME ["/data"]
EXPOSE 6379
ENTRYPOINT ["/usr/bin/tini", "--", "docker-entrypoint.sh"]
CMD ["redis-server"]
