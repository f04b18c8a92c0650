using OrleansLimiter.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Orleans.Messaging;
using OrleansLimiter.Client.Hosting;

namespace OrleansLimiter.Tests.Client;

/// <summary>
/// The client keeps its gateways when the membership table is gone (Redis lost its data): Orleans
/// would close every connection to a gateway missing from the list it reads.
/// </summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class LastKnownGatewayListTests
{
    private static readonly Uri A = new("gwy.tcp://127.0.0.1:30001/1");
    private static readonly Uri B = new("gwy.tcp://127.0.0.1:30002/2");

    [Fact]
    public async Task AnEmptyList_AfterGateways_AnswersTheLastGateways()
    {
        var table = new ScriptedList([A, B], [], []);
        var list = new LastKnownGatewayList(table, NullLogger<LastKnownGatewayList>.Instance);

        Assert.Equal([A, B], await list.GetGateways());
        Assert.Equal([A, B], await list.GetGateways());
        Assert.Equal([A, B], await list.GetGateways());
        Assert.Equal(3, table.Reads);
    }

    [Fact]
    public async Task AnUnreadableTable_AfterGateways_AnswersTheLastGateways()
    {
        var table = new ScriptedList([A], null);
        var list = new LastKnownGatewayList(table, NullLogger<LastKnownGatewayList>.Instance);

        Assert.Equal([A], await list.GetGateways());
        Assert.Equal([A], await list.GetGateways());
    }

    [Fact]
    public async Task ANewNonEmptyList_ReplacesTheKeptOne_AtOnce()
    {
        // The silos wrote their rows again, one of them at a new address: the new list is the truth.
        var table = new ScriptedList([A], [], [B], []);
        var list = new LastKnownGatewayList(table, NullLogger<LastKnownGatewayList>.Instance);

        Assert.Equal([A], await list.GetGateways());
        Assert.Equal([A], await list.GetGateways());
        Assert.Equal([B], await list.GetGateways());
        Assert.Equal([B], await list.GetGateways());
    }

    [Fact]
    public async Task WithNothingKnown_TheTablesAnswerPassesThrough()
    {
        // A client that never saw a gateway cannot invent one: Orleans reports "no gateway" as before.
        var empty = new LastKnownGatewayList(new ScriptedList(new List<Uri>()), NullLogger<LastKnownGatewayList>.Instance);
        Assert.Empty(await empty.GetGateways());

        var failing = new LastKnownGatewayList(new ScriptedList([null]), NullLogger<LastKnownGatewayList>.Instance);
        await Assert.ThrowsAsync<InvalidOperationException>(failing.GetGateways);
    }

    [Fact]
    public void ARedisClusterClient_ReadsItsGatewaysThroughTheKeeper()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Redis:ConnectionString"] = "127.0.0.1:1",
        });
        builder.AddOrleansLimiterClient();

        var registrations = builder.Services.Where(d => d.ServiceType == typeof(IGatewayListProvider)).ToList();
        Assert.Single(registrations);
        using var host = builder.Build();
        Assert.IsType<LastKnownGatewayList>(host.Services.GetRequiredService<IGatewayListProvider>());
    }

    /// <summary>Answers each read with the next list; null stands for a read that fails.</summary>
    private sealed class ScriptedList(params IList<Uri>?[] answers) : IGatewayListProvider
    {
        public int Reads { get; private set; }

        public TimeSpan MaxStaleness => TimeSpan.FromSeconds(5);

        [Obsolete("Orleans considers every provider updatable.")]
        public bool IsUpdatable => true;

        public Task InitializeGatewayListProvider() => Task.CompletedTask;

        public Task<IList<Uri>> GetGateways()
        {
            var answer = answers[Math.Min(Reads++, answers.Length - 1)];
            return answer is null
                ? Task.FromException<IList<Uri>>(new InvalidOperationException("the table could not be read"))
                : Task.FromResult(answer);
        }
    }
}
