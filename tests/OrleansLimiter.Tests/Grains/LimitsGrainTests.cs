using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.Grains;

[Collection(ClusterCollection.Name)]
public sealed class LimitsGrainTests(LimiterClusterFixture fixture)
{
    private ILimitsGrain Limits => fixture.Cluster.Client.GetGrain<ILimitsGrain>(ILimitsGrain.DefaultKey);

    [Fact]
    public async Task GetProviders_ListsConfiguredProviders()
    {
        var providers = await Limits.GetProvidersAsync();
        Assert.Equal(["anthropic", "burst", "openai", "short", "tiny"], providers.Select(p => p.Provider));
        var tiny = providers.Single(p => p.Provider == "tiny");
        Assert.Equal(new ProviderLimit("tiny", 100, 60, "test:tiny", false), tiny);
    }

    [Fact]
    public async Task SetLimit_AppliesOnEverySilo_ThenClears()
    {
        try
        {
            var changed = await Limits.SetLimitAsync("anthropic", 7, 30);
            Assert.Equal(new ProviderLimit("anthropic", 7, 30, "ratelimit:anthropic", true), changed);

            // Provider grains on the other silo see the change within the refresh interval.
            var grain = fixture.Cluster.Client.GetGrain<IProviderLimiterGrain>(LimiterKey.Format("anthropic", TestKeys.Unique()));
            var deadline = DateTime.UtcNow.AddSeconds(15);
            while ((await grain.GetStateAsync()).Limit != 7 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(200);
            }

            Assert.Equal(7, (await grain.GetStateAsync()).Limit);
            var first = await grain.TryConsumeAsync(7);
            Assert.True(first.IsAllowed);
            Assert.False((await grain.TryConsumeAsync(1)).IsAllowed);
            await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => grain.TryConsumeAsync(8).AsTask());
        }
        finally
        {
            Assert.True(await Limits.ClearLimitAsync("anthropic"));
        }

        Assert.False(await Limits.ClearLimitAsync("anthropic"));
        Assert.False((await Limits.GetProvidersAsync()).Single(p => p.Provider == "anthropic").ChangedAtRunTime);
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
}
