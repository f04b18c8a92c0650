using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.Configuration;
using OrleansLimiter.Hosting;
using StackExchange.Redis;

namespace OrleansLimiter.Client.Hosting;

/// <summary>One call that makes a worker app a client of the limiter cluster.</summary>
public static class LimiterClientHostBuilderExtensions
{
    /// <summary>
    /// Connects to the cluster described by <see cref="LimiterClusterSettings"/> (through Redis
    /// membership, or to fixed gateways) and adds <see cref="ILimiterClient"/>. With neither configured
    /// the client runs in local mode.
    /// </summary>
    public static IHostApplicationBuilder AddOrleansLimiterClient(this IHostApplicationBuilder builder, Action<LimiterClientOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var settings = LimiterClusterSettings.FromConfiguration(builder.Configuration);
        if (settings.Redis is not null || settings.Gateways.Count > 0)
        {
            builder.UseOrleansClient(client =>
            {
                client.Configure<ClusterOptions>(o =>
                {
                    o.ClusterId = settings.ClusterId;
                    o.ServiceId = settings.ServiceId;
                });
                // Find new gateways quickly, and give up on a call after LimiterClient:CallTimeout
                // (2 s) rather than Orleans' 30 s: a decision takes milliseconds, and a call sent to a
                // silo that just died is never answered; the caller retries (AcquireAsync, ScheduleAsync)
                // once the cluster has moved the grain.
                var callTimeout = builder.Configuration.GetValue("LimiterClient:CallTimeout", TimeSpan.FromSeconds(2));
                client.Configure<GatewayOptions>(o => o.GatewayListRefreshPeriod = TimeSpan.FromSeconds(5));
                client.Configure<ClientMessagingOptions>(o => o.ResponseTimeout = callTimeout);
                if (settings.Tls is { } tls)
                {
                    // Silos configured with certificates accept only clients that present one their
                    // authority signed (Orleans:Tls:*).
                    client.UseTls(tls.Certificate, tls.Configure);
                }

                if (settings.Redis is not null)
                {
                    client.UseRedisClustering(o =>
                    {
                        o.ConfigurationOptions = settings.CreateRedisOptions();
                        o.ConfigurationOptions.AbortOnConnectFail = false;
                    });

                    // A membership table that Redis lost must not disconnect the clients from running
                    // silos (see LastKnownGatewayList).
                    LastKnownGatewayList.Decorate(client.Services);
                }
                else
                {
                    client.UseStaticClustering(settings.Gateways.ToArray());
                }
            });
        }

        if (settings.Redis is not null)
        {
            // The seed's health output shows Redis as the workers see it (no admin mode: see LimiterHealth).
            builder.Services.AddSingleton(_ =>
            {
                var config = settings.CreateRedisOptions();
                config.AbortOnConnectFail = false;
                return new LimiterHealthRedis(ConnectionMultiplexer.Connect(config));
            });
        }

        if (settings.Redis is not null || settings.Gateways.Count > 0)
        {
            builder.Services.AddSingleton<ILimiterHealthContributor, ClientHealthContributor>();
        }

        builder.Services.AddSingleton(settings);
        builder.Services.AddOrleansLimiterClient(builder.Configuration, configure);
        return builder;
    }
}
