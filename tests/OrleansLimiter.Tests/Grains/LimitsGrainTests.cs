using Orleans.Persistence.Redis;
using Orleans.Runtime.Placement;
using Orleans.TestingHost;
using OrleansLimiter.Grains.Limits;
using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.Grains;

[Trait(Tier.Name, Tier.Cluster)]
[Collection(ClusterCollection.Name)]
public sealed class LimitsGrainTests(LimiterClusterFixture fixture)
{
    private ILimitsGrain Limits => fixture.Cluster.Client.GetGrain<ILimitsGrain>(ILimitsGrain.DefaultKey);

    [Fact]
    public async Task GetProviders_ListsConfiguredProviders()
    {
        var providers = await Limits.GetProvidersAsync();
        Assert.Equal(["anthropic", "burst", "fair", "fairllm", "huge", "laws", "lawseed", "llm", "offer", "openai", "perkey", "perkeyllm", "short", "tiny"], providers.Select(p => p.Provider));
        var tiny = providers.Single(p => p.Provider == "tiny");
        Assert.Equal(new ProviderLimit("tiny", 100, 60, "test:tiny", false), tiny);
    }

    [Fact]
    public async Task SetLimit_IsInForceOnTheOtherSilo_WhenItAnswers_AndSoIsItsClear()
    {
        // The limits grain pushes a change to every other active silo before it answers.
        await Limits.GetProvidersAsync();
        var limitsSilo = await fixture.Cluster.Client.GetGrain<IManagementGrain>(0).GetActivationAddress(Limits);
        Assert.NotNull(limitsSilo);
        var other = fixture.Cluster.Silos.Single(s => !s.SiloAddress.Equals(limitsSilo));
        var grain = await ActivateOnAsync(other, LimiterKey.Format("anthropic", TestKeys.Unique()));
        var before = await grain.GetStateAsync();
        Assert.Equal(other.SiloAddress.ToParsableString(), before.Silo);
        Assert.Equal(50_000, before.Limit);

        try
        {
            var changed = await Limits.SetLimitAsync("anthropic", 7, 30);
            Assert.Equal(new ProviderLimit("anthropic", 7, 30, "ratelimit:anthropic", true), changed);
            Assert.Equal(7, (await grain.GetStateAsync()).Limit);
            Assert.True((await grain.TryConsumeAsync(7)).IsAllowed);
            Assert.False((await grain.TryConsumeAsync(1)).IsAllowed);
            await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => grain.TryConsumeAsync(8).AsTask());
        }
        finally
        {
            Assert.True(await Limits.ClearLimitAsync("anthropic"));
        }

        Assert.Equal(50_000, (await grain.GetStateAsync()).Limit);
        Assert.False(await Limits.ClearLimitAsync("anthropic"));
        Assert.False((await Limits.GetProvidersAsync()).Single(p => p.Provider == "anthropic").ChangedAtRunTime);
    }

    [Fact]
    public async Task SetLimit_IsInForceOnASiloThatStartsAfterIt_FromItsFirstDecision()
    {
        // A silo that starts after a change missed its push; its first activation loads the run-time
        // changes before it decides, so not even its first decision is made under the configured limit.
        var key = LimiterKey.Format("anthropic", TestKeys.Unique());
        await Limits.SetLimitAsync("anthropic", 7, 30);
        SiloHandle? added = null;
        try
        {
            added = await fixture.Cluster.StartAdditionalSiloAsync();
            await fixture.Cluster.WaitForLivenessToStabilizeAsync();
            RequestContext.Set(IPlacementDirector.PlacementHintKey, added.SiloAddress);
            try
            {
                var grain = fixture.Cluster.Client.GetGrain<IProviderLimiterGrain>(key);
                await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => grain.TryConsumeAsync(8).AsTask());
                Assert.True((await grain.TryConsumeAsync(7)).IsAllowed);
                Assert.False((await grain.TryConsumeAsync(1)).IsAllowed);
                var state = await grain.GetStateAsync();
                Assert.Equal(added.SiloAddress.ToParsableString(), state.Silo);
                Assert.Equal(7, state.Limit);
            }
            finally
            {
                RequestContext.Remove(IPlacementDirector.PlacementHintKey);
            }
        }
        finally
        {
            Assert.True(await Limits.ClearLimitAsync("anthropic"));
            if (added is not null)
            {
                await fixture.Cluster.StopSiloAsync(added);
            }
        }
    }

    [Fact]
    public async Task SetNamedLimit_ChangesOneLimit_KeepsItsAlgorithmAndTheOthers_ThenClears()
    {
        // llm: requests 100/60 s, tokens a 1,000 per 10 s bucket; big-model configures its own tokens.
        await Limits.GetProvidersAsync();
        var limitsSilo = await fixture.Cluster.Client.GetGrain<IManagementGrain>(0).GetActivationAddress(Limits);
        var here = fixture.Cluster.Silos.Single(s => s.SiloAddress.Equals(limitsSilo));
        try
        {
            var changed = await Limits.SetNamedLimitAsync("llm", "Tokens", 40, 20);
            Assert.Equal(100, changed.Points);
            Assert.False(changed.ChangedAtRunTime);
            Assert.Equal([new NamedLimit("tokens", Configuration.LimitAlgorithm.TokenBucket, 40, 20, true)], changed.Limits!);

            // In force at once on the silo that took it: 40 tokens, then nothing left; requests as configured.
            var grain = await ActivateOnAsync(here, LimiterKey.Format("llm", TestKeys.Unique()));
            var granted = await grain.TryConsumeCostsAsync(CostBatch.Of([LimitCost.Of(("requests", 1), ("tokens", 40))], RequestId.New()));
            Assert.True(granted.Decision(0).IsAllowed);
            Assert.Equal([100, 40], granted.Limits.Select(l => l.Limit));
            var refused = await grain.TryConsumeCostsAsync(CostBatch.Of([LimitCost.Of(("requests", 1), ("tokens", 5))], RequestId.New()));
            Assert.Equal("tokens", refused.Decision(0).BlockedBy);

            // A key with its own tokens limit keeps it.
            var big = await ActivateOnAsync(here, "llm/big-model");
            Assert.Equal(5000, (await big.GetLimitsAsync()).Single(l => l.Name == "tokens").Limit);

            // Changing requests as well keeps the tokens change.
            var both = await Limits.SetNamedLimitAsync("llm", "requests", 9, 60);
            Assert.True(both.ChangedAtRunTime);
            Assert.Equal(9, both.Points);
            Assert.Equal(40, both.Limits!.Single().Points);
        }
        finally
        {
            Assert.True(await Limits.ClearLimitAsync("llm"));
        }

        var cleared = (await Limits.GetProvidersAsync()).Single(p => p.Provider == "llm");
        Assert.Equal(new NamedLimit("tokens", Configuration.LimitAlgorithm.TokenBucket, 1000, 10, false), cleared.Limits!.Single());
        Assert.False(cleared.ChangedAtRunTime);
    }

    [Fact]
    public async Task SetNamedLimit_UnknownLimit_IsRefused_NamingTheLimitsThereAre()
    {
        var error = await Assert.ThrowsAsync<ArgumentException>(() => Limits.SetNamedLimitAsync("llm", "output-tokens", 10, 60).AsTask());
        Assert.Contains("has no limit named 'output-tokens' (it has: requests, tokens)", error.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Limits.SetNamedLimitAsync("llm", "tokens", 0, 60).AsTask());
        Assert.DoesNotContain((await Limits.GetProvidersAsync()).Single(p => p.Provider == "llm").Limits!, l => l.ChangedAtRunTime);
    }

    [Theory]
    [InlineData(0, 60)]
    [InlineData(10, 0)]
    [InlineData(10, -1)]
    [InlineData(10, 0.0005)]
    [InlineData(10, double.NaN)]
    [InlineData(10, double.PositiveInfinity)]
    [InlineData(10, 31_536_001)]
    [InlineData(1_000_000_000_000_001, 60)]
    public async Task SetLimit_RejectsBadValues(long points, double duration)
    {
        var error = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Limits.SetLimitAsync("openai", points, duration).AsTask());
        Assert.Matches("^(Points must be at|Duration must be a number of seconds from 0.001)", error.Message);
        Assert.False((await Limits.GetProvidersAsync()).Single(p => p.Provider == "openai").ChangedAtRunTime);
    }

    [Fact]
    public async Task SetLimit_UnknownProvider_IsClearError() =>
        await Assert.ThrowsAsync<UnknownProviderException>(() => Limits.SetLimitAsync("mistral", 5, 5).AsTask());

    /// <summary>A provider grain activated on <paramref name="silo"/> (a placement hint on its first call).</summary>
    private async Task<IProviderLimiterGrain> ActivateOnAsync(SiloHandle silo, string key)
    {
        RequestContext.Set(IPlacementDirector.PlacementHintKey, silo.SiloAddress);
        try
        {
            var grain = fixture.Cluster.Client.GetGrain<IProviderLimiterGrain>(key);
            await grain.GetStateAsync();
            return grain;
        }
        finally
        {
            RequestContext.Remove(IPlacementDirector.PlacementHintKey);
        }
    }
}

/// <summary>The limits grain when its storage fails: nothing changes, in storage or in memory.</summary>
[Trait(Tier.Name, Tier.Cluster)]
public sealed class LimitsGrainStorageFailureTests : IAsyncLifetime
{
    private RedisServer _redis = null!;
    private TestCluster _cluster = null!;

    public async Task InitializeAsync()
    {
        // A Redis of its own: the test stops it, and it comes back empty.
        _redis = await RedisServer.StartAsync();
        _cluster = await LimiterTestCluster.DeployAsync<LimiterClusterFixture.SiloConfigurator>(1, "limits-", new Dictionary<string, string?>
        {
            ["Test:Redis"] = _redis.ConnectionString,
        });
    }

    public async Task DisposeAsync()
    {
        await LimiterTestCluster.StopAsync(_cluster);
        await _redis.DisposeAsync();
    }

    [Fact]
    public async Task SetLimit_WhenStorageFails_ChangesNothing()
    {
        var limits = _cluster.Client.GetGrain<ILimitsGrain>(ILimitsGrain.DefaultKey);
        var before = (await limits.GetProvidersAsync()).Single(p => p.Provider == "anthropic");

        await using (_redis.Stop())
        {
            // The storage's own error, as the grain writes its record itself (not through [PersistentState]).
            await Assert.ThrowsAsync<RedisStorageException>(() => limits.SetLimitAsync("anthropic", 7, 30).AsTask());

            Assert.Equal(before, (await limits.GetProvidersAsync()).Single(p => p.Provider == "anthropic"));
            Assert.Empty(await _cluster.Client.GetGrain<ILimitOverridesGrain>(ILimitsGrain.DefaultKey).GetOverridesAsync());
            Assert.False(await limits.ClearLimitAsync("anthropic"));
        }

        // Storage back: the next change is stored and in force.
        Assert.Equal(8, (await limits.SetLimitAsync("anthropic", 8, 30)).Points);
        Assert.Equal(8, (await limits.GetProvidersAsync()).Single(p => p.Provider == "anthropic").Points);
    }
}

/// <summary>
/// The run-time changes outlive both the silo that held them in memory (killed) and their record
/// (Redis flushed): the silos that decide under them write them again.
/// </summary>
[Trait(Tier.Name, Tier.Cluster)]
public sealed class LimitsGrainRecordLossTests : IAsyncLifetime
{
    private RedisServer _redis = null!;
    private TestCluster _cluster = null!;

    public async Task InitializeAsync()
    {
        _redis = await RedisServer.StartAsync();
        _cluster = await LimiterTestCluster.DeployAsync<LimiterClusterFixture.SiloConfigurator>(2, "limitsloss-", new Dictionary<string, string?>
        {
            ["Test:Redis"] = _redis.ConnectionString,
        });
    }

    public async Task DisposeAsync()
    {
        await LimiterTestCluster.StopAsync(_cluster);
        await _redis.DisposeAsync();
    }

    [Fact]
    public async Task ItsSiloKilled_AndTheRecordFlushed_TheChangeStaysInForce_AndIsStoredAgain()
    {
        var limits = _cluster.Client.GetGrain<ILimitsGrain>(ILimitsGrain.DefaultKey);
        Assert.Equal(7, (await limits.SetLimitAsync("anthropic", 7, 30)).Points);
        var host = await _cluster.Client.GetGrain<IManagementGrain>(0).GetActivationAddress(limits);
        var holder = _cluster.Silos.Single(s => s.SiloAddress.Equals(host));

        // The silo holding the changes in memory killed (no deactivation), then the record lost before
        // anything activates the grain again.
        await _cluster.KillSiloAsync(holder);
        using (var redis = await _redis.ConnectAsync())
        {
            await redis.GetDatabase().ExecuteAsync("FLUSHALL");
        }

        // Its next activation, on the silo left, finds no record and takes what that silo decides under.
        ProviderLimit? anthropic = null;
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (anthropic is null)
        {
            try
            {
                anthropic = (await limits.GetProvidersAsync()).Single(p => p.Provider == "anthropic");
            }
            catch (Exception ex) when (ex is SiloUnavailableException or TimeoutException or OrleansMessageRejectionException && DateTime.UtcNow < deadline)
            {
                await Task.Delay(200);
            }
        }

        Assert.Equal((7L, true), (anthropic.Points, anthropic.ChangedAtRunTime));
        using (var redis = await _redis.ConnectAsync())
        {
            Assert.True(await redis.GetDatabase().KeyExistsAsync($"{_cluster.Options.ServiceId}/state/limits/default/limits"), "the record was not written again");
        }
    }
}
