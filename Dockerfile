# Multi-stage build of the silo and the sample worker: `docker compose build` uses the two targets.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY Directory.Build.props Directory.Packages.props ./
COPY src/ src/
RUN dotnet publish src/Silo/OrleansLimiter.Silo.csproj -c Release -o /out/silo \
 && dotnet publish src/Worker/OrleansLimiter.Worker.csproj -c Release -o /out/worker \
 && dotnet publish src/Cli/OrleansLimiter.Cli.csproj -c Release -o /out/cli

FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS silo
WORKDIR /app
COPY --from=build /out/silo .
COPY --from=build /out/cli /cli
RUN printf '#!/bin/sh\nexec dotnet /cli/OrleansLimiter.Cli.dll "$@"\n' > /usr/local/bin/limiter && chmod +x /usr/local/bin/limiter
ENV ASPNETCORE_URLS=http://0.0.0.0:3000 \
    Orleans__AdvertisedAddress=auto
EXPOSE 3000 11111 30000
ENTRYPOINT ["dotnet", "OrleansLimiter.Silo.dll"]

FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS worker
WORKDIR /app
COPY --from=build /out/worker .
ENV ASPNETCORE_URLS=http://0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["dotnet", "OrleansLimiter.Worker.dll"]
