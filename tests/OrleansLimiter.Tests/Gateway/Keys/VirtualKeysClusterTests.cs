using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using OrleansLimiter.Gateway.Keys;
using OrleansLimiter.Security;
using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.Gateway.Keys;

/// <summary>The virtual-key table in a real two-silo cluster with Redis grain storage, and a gateway's copy of it.</summary>
[Trait(Tier.Name, Tier.Cluster)]
[Collection(ClusterCollection.Name)]
public sealed class VirtualKeysClusterTests(LimiterClusterFixture fixture)
{
    private IVirtualKeysGrain Keys => fixture.Cluster.Client.GetGrain<IVirtualKeysGrain>(IVirtualKeysGrain.DefaultKey);

    [Fact]
    public async Task AddedKey_IsInTheTableByItsHash_UntilRevoked_AndTheTableVersionMoves()
    {
        var key = VirtualKeyFormat.Create();
        var sha = VirtualKeyFormat.Sha256(key);
        var before = await Keys.GetTableAsync(-1);
        Assert.NotNull(before);
        Assert.Null(await Keys.GetTableAsync(before.Version));

        var info = await Keys.AddAsync(new VirtualKeyRegistration(sha, "team-a", WaitPriority.Batch, 2.5));
        Assert.Equal($"vk_{sha[..12]}", info.Id);
        Assert.True(info.IsValid);

        var added = await Keys.GetTableAsync(before.Version);
        Assert.NotNull(added);
        Assert.True(added.Version > before.Version);
        Assert.Equal("team-a", added.BySha256[sha].Tenant);
        Assert.Equal(WaitPriority.Batch, added.BySha256[sha].Priority);
        Assert.Contains(await Keys.ListAsync(), k => k.Id == info.Id && k.IsValid);

        Assert.True(await Keys.RevokeAsync(info.Id));
        Assert.False(await Keys.RevokeAsync(info.Id));
        var revoked = await Keys.GetTableAsync(added.Version);
        Assert.NotNull(revoked);
        Assert.False(revoked.BySha256.ContainsKey(sha));
        Assert.Contains(await Keys.ListAsync(), k => k.Id == info.Id && k.RevokedAt is not null);
    }

    [Fact]
    public async Task BadRegistrations_AreRefusedNamingWhatIsWrong()
    {
        var sha = VirtualKeyFormat.Sha256(VirtualKeyFormat.Create());
        Assert.Contains("64 lower-case hex", (await Assert.ThrowsAsync<ArgumentException>(() => Keys.AddAsync(new VirtualKeyRegistration(sha.ToUpperInvariant(), "t", null, null)).AsTask())).Message, StringComparison.Ordinal);
        Assert.Contains("Tenant name", (await Assert.ThrowsAsync<ArgumentException>(() => Keys.AddAsync(new VirtualKeyRegistration(sha, "", null, null)).AsTask())).Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Keys.AddAsync(new VirtualKeyRegistration(sha, "t", null, -1)).AsTask());

        var info = await Keys.AddAsync(new VirtualKeyRegistration(sha, "t", null, null));
        try
        {
            Assert.Contains("already registered", (await Assert.ThrowsAsync<ArgumentException>(() => Keys.AddAsync(new VirtualKeyRegistration(sha, "other", null, null)).AsTask())).Message, StringComparison.Ordinal);
        }
        finally
        {
            await Keys.RevokeAsync(info.Id);
        }
    }

    [Fact]
    public async Task GatewayCopy_SeesANewKeyAndARevocation_AfterOneRefreshInterval()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var cache = new VirtualKeyCache(fixture.Cluster.Client, time, NullLogger<VirtualKeyCache>.Instance);
        var sha = VirtualKeyFormat.Sha256(VirtualKeyFormat.Create());
        Assert.False((await cache.GetAsync()).BySha256.ContainsKey(sha));

        var info = await Keys.AddAsync(new VirtualKeyRegistration(sha, "team-b", null, null));
        Assert.False((await cache.GetAsync()).BySha256.ContainsKey(sha));
        time.Advance(VirtualKeyCache.RefreshInterval);
        Assert.Equal("team-b", (await cache.GetAsync()).BySha256[sha].Tenant);

        await Keys.RevokeAsync(info.Id);
        Assert.True((await cache.GetAsync()).BySha256.ContainsKey(sha));
        time.Advance(VirtualKeyCache.RefreshInterval);
        Assert.False((await cache.GetAsync()).BySha256.ContainsKey(sha));
    }
}
