# Builds Caddy with caddy-postback and runs it with a persistent data volume.
#
#   docker build -t caddy-postback .
#   docker run -p 80:80 -p 443:443 -v caddy-data:/data -v $PWD/Caddyfile:/etc/caddy/Caddyfile caddy-postback
#
# The store lives under Caddy's data directory, /data/caddy/postback.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The tags drop the second copies of Badger and the SQL drivers that Caddy's
# ACME server would otherwise link, as Caddy's own releases do (the postgres
# storage engine imports pgx itself).
RUN CGO_ENABLED=0 go build -trimpath -tags nobadger,nomysql,nopgx -ldflags="-s -w" -o /out/caddy ./cmd/caddy

FROM caddy:2.11
COPY --from=build /out/caddy /usr/bin/caddy
# caddy:2.11 sets XDG_DATA_HOME=/data; keep it on a volume so that queued
# postbacks and sessions survive container restarts.
VOLUME /data
