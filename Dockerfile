# Multi-stage build of the silo, the sample worker, the gateway host, the provider simulator and the Node
# worker: `docker compose build` uses the targets.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
# The build talks to NuGet and nothing else.
ENV DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
WORKDIR /src
# Restore from the project files alone first, so a change to the sources does not fetch the packages
# again: every project the three below build is listed here.
COPY Directory.Build.props Directory.Packages.props ./
COPY src/Abstractions/OrleansLimiter.Abstractions.csproj src/Abstractions/
COPY src/AI/OrleansLimiter.AI.csproj src/AI/
COPY src/Client/OrleansLimiter.Client.csproj src/Client/
COPY src/Gateway/OrleansLimiter.Gateway.csproj src/Gateway/
COPY src/Grains/OrleansLimiter.Grains.csproj src/Grains/
COPY src/Hosting/OrleansLimiter.Hosting.csproj src/Hosting/
COPY src/Hosting.AspNetCore/OrleansLimiter.Hosting.AspNetCore.csproj src/Hosting.AspNetCore/
COPY src/Silo/OrleansLimiter.Silo.csproj src/Silo/
COPY src/Worker/OrleansLimiter.Worker.csproj src/Worker/
COPY src/Cli/OrleansLimiter.Cli.csproj src/Cli/
COPY src/Gateway.Host/OrleansLimiter.Gateway.Host.csproj src/Gateway.Host/
COPY src/ProviderModel/OrleansLimiter.ProviderModel.csproj src/ProviderModel/
COPY src/Replay/OrleansLimiter.Replay.csproj src/Replay/
COPY tools/ProviderSimulator/OrleansLimiter.ProviderSimulator.csproj tools/ProviderSimulator/
RUN dotnet restore src/Silo/OrleansLimiter.Silo.csproj \
 && dotnet restore src/Worker/OrleansLimiter.Worker.csproj \
 && dotnet restore src/Cli/OrleansLimiter.Cli.csproj \
 && dotnet restore src/Gateway.Host/OrleansLimiter.Gateway.Host.csproj \
 && dotnet restore tools/ProviderSimulator/OrleansLimiter.ProviderSimulator.csproj
# The analyzer exceptions apply to this build too (warnings are errors).
COPY .editorconfig ./
COPY src/ src/
RUN dotnet publish src/Silo/OrleansLimiter.Silo.csproj -c Release -o /out/silo \
 && dotnet publish src/Worker/OrleansLimiter.Worker.csproj -c Release -o /out/worker \
 && dotnet publish src/Cli/OrleansLimiter.Cli.csproj -c Release -o /out/cli \
 && dotnet publish src/Gateway.Host/OrleansLimiter.Gateway.Host.csproj -c Release -o /out/gateway
COPY tools/ProviderSimulator/ tools/ProviderSimulator/
RUN dotnet publish tools/ProviderSimulator/OrleansLimiter.ProviderSimulator.csproj -c Release -o /out/simulator

FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS silo
WORKDIR /app
COPY --from=build /out/silo .
COPY --from=build /out/cli /cli
RUN printf '#!/bin/sh\nexec dotnet /cli/OrleansLimiter.Cli.dll "$@"\n' > /usr/local/bin/limiter && chmod +x /usr/local/bin/limiter
# Compose may start the silo before Redis answers: it waits for it rather than exiting.
# Workstation GC with a 256 MB gen0 budget: short, rare collections (README, Performance).
ENV ASPNETCORE_URLS=http://0.0.0.0:3000 \
    Orleans__AdvertisedAddress=auto \
    Startup__RedisWaitSeconds=60 \
    DOTNET_gcServer=0 \
    DOTNET_GCgen0size=0x10000000
EXPOSE 3000 11111 30000
ENTRYPOINT ["dotnet", "OrleansLimiter.Silo.dll"]

FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS worker
WORKDIR /app
COPY --from=build /out/worker .
ENV ASPNETCORE_URLS=http://0.0.0.0:8080 \
    Startup__RedisWaitSeconds=60 \
    DOTNET_gcServer=0 \
    DOTNET_GCgen0size=0x10000000
EXPOSE 8080
ENTRYPOINT ["dotnet", "OrleansLimiter.Worker.dll"]

# The standalone gateway host (an Orleans client): listens beyond loopback in its container, so it
# starts only once a virtual key exists (`limiter keys create` in a silo container); until then it
# exits with code 3 and compose starts it again.
FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS gateway
WORKDIR /app
COPY --from=build /out/gateway .
ENV ASPNETCORE_URLS=http://0.0.0.0:4000 \
    Startup__RedisWaitSeconds=60 \
    DOTNET_gcServer=0 \
    DOTNET_GCgen0size=0x10000000
EXPOSE 4000
ENTRYPOINT ["dotnet", "OrleansLimiter.Gateway.Host.dll"]

# The provider simulator (docs/simulator.md): the gateway profile's stand-in for OpenAI and Anthropic.
FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS simulator
WORKDIR /app
COPY --from=build /out/simulator .
ENV ASPNETCORE_URLS=http://0.0.0.0:5080 \
    DOTNET_gcServer=0
EXPOSE 5080
ENTRYPOINT ["dotnet", "OrleansLimiter.ProviderSimulator.dll"]

# A Node worker calling the gateway through the official openai SDK (tests/node/load/worker.mjs). Its
# packages are installed here, from the lockfile of the Node tests (openai 7.55.0): the container
# downloads nothing when it runs. Last in the file: building the .NET targets never needs this base.
FROM node:20-bookworm-slim AS node-worker
WORKDIR /app
COPY tests/node/package.json tests/node/package-lock.json ./
# Node trusts only its own CA list: also trust the system's where the image has one (package sources
# reached through a proxy may present a CA of their own).
RUN if [ -f /etc/ssl/certs/ca-certificates.crt ]; then export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt; fi \
 && npm ci --no-audit --no-fund --loglevel=error \
 && npm cache clean --force >/dev/null 2>&1
COPY tests/node/load/worker.mjs ./
USER node
ENTRYPOINT ["node", "worker.mjs"]
