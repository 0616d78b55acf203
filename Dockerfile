FROM node:20-bookworm-slim
WORKDIR /app
# The /dev/shm addon builds at install time; without a compiler the server falls back to heap blocks.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json .npmrc ./
COPY native ./native
COPY scripts ./scripts
COPY tsconfig.json ./
COPY protocol ./protocol
COPY shm ./shm
COPY server ./server
COPY client ./client
COPY cli ./cli
COPY examples ./examples
COPY bench ./bench
COPY viewer ./viewer
RUN npm ci && npm prune --omit=dev --ignore-scripts
ENV HOST=0.0.0.0 PORT=8080
EXPOSE 8080
USER node
CMD ["node", "dist/cli/main.js", "serve", "--demo"]
