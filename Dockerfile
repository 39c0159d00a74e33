# syntax=docker/dockerfile:1
# A MinCommerce node. The sources are TypeScript run as they are: Node 24 strips the types
# itself, so there is no compile step and the image runs exactly the files in src/.
#
#   docker build -t mincommerce .
#   docker run -p 3000:3000 -e DATABASE_URL=... -e JWT_SECRET=... mincommerce

# Every dependency, from the lockfile: the build stage needs the dev ones (vite, react plugin).
FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

# The storefront, built once here; the runtime serves web/dist and never builds it.
FROM deps AS build
COPY . .
RUN node web/build.ts

# Production dependencies only, from the same lockfile: no vite, vitest or the npm `node`
# package (the image's own Node 24 runs the node).
FROM node:24-slim AS production-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:24-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    FORWARD_PORT=4000 \
    DATA_DIR=/data
WORKDIR /app
# Owned by root and read-only to the node: only DATA_DIR (the embedded database and its
# generated secret, when no DATABASE_URL or JWT_SECRET is given) is writable.
COPY --from=production-deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY src ./src
COPY --from=build /app/web/dist ./web/dist
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]
USER node
EXPOSE 3000 4000
# The node drains on SIGTERM (its sales handed over, leases given back) and exits 0. It is
# PID 1's direct exec, no shell or npm between: the signal reaches it.
STOPSIGNAL SIGTERM
# Ready (200, also when degraded), not merely alive: a node handing its sales over says 503.
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/api/health/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "src/main.ts"]
