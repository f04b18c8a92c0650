using System.Diagnostics;
using Orleans.TestingHost;
using OrleansLimiter.Grains.Limits;
using OrleansLimiter.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Storage;
using StackExchange.Redis;

namespace OrleansLimiter.Tests.Grains;

/// <summary>
/// The limits grain's stored record damaged or lost behind its back, in real Redis: an unreadable
/// record is reported and replaced by the next change, a vanished one is written again.
/// </summary>
[Trait(Tier.Name, Tier.Cluster)]
public sealed class LimitsRecordTests : IAsyncLifetime
{
    private RedisServer _redis = null!;
    private ConnectionMultiplexer _connection = null!;
    private TestCluster _cluster = null!;

    private ILimitsGrain Limits => _cluster.Client.GetGrain<ILimitsGrain>(ILimitsGrain.DefaultKey);

    private IDatabase Db => _connection.GetDatabase();

    private string Record => $"{_cluster.Options.ServiceId}/state/limits/default/limits";

    public async Task InitializeAsync()
    {
        _redis = await RedisServer.StartAsync();
        _connection = await _redis.ConnectAsync();
        _cluster = await LimiterTestCluster.DeployAsync<LimiterClusterFixture.SiloConfigurator>(1, "limits-record-", new Dictionary<string, string?>(LimiterClusterFixture.Providers)
        {
            ["Test:Redis"] = _redis.ConnectionString,
        });
    }

    public async Task DisposeAsync()
    {
        await LimiterTestCluster.StopAsync(_cluster);
        await _connection.DisposeAsync();
        await _redis.DisposeAsync();
    }

    public static TheoryData<string> Damage => ["string", "list", "garbage data", "data of another shape"];

    [Theory]
    [MemberData(nameof(Damage))]
    public async Task UnreadableRecordAtActivation_IsReported_ConfigurationApplies_SetReplacesIt(string damage)
    {
        await DamageAsync(damage);

        var providers = await Limits.GetProvidersAsync();
        Assert.Equal(100, providers.Single(p => p.Provider == "tiny").Points);
        Assert.DoesNotContain(providers, p => p.ChangedAtRunTime);
        var problem = await Limits.GetStoredRecordProblemAsync();
        Assert.NotNull(problem);
        Assert.Equal(Record, problem!.Record);
        Assert.Contains(Record, problem.Message, StringComparison.Ordinal);
        Assert.False(string.IsNullOrWhiteSpace(problem.Reason));

        Assert.Equal(7, (await Limits.SetLimitAsync("tiny", 7, 30)).Points);
        Assert.Null(await Limits.GetStoredRecordProblemAsync());
        Assert.Equal(RedisType.Hash, await Db.KeyTypeAsync(Record));
        Assert.Contains("\"Points\":7", (string?)await Db.HashGetAsync(Record, "data"), StringComparison.Ordinal);

        // The replacement is a record like any other.
        Assert.Equal(new LimitOverride(7, 30), (await ReadStoredAsync()).Overrides["tiny"]);
    }

    [Fact]
    public async Task RecordDamagedWhileActive_IsReported_ChangesInMemoryKept_SetReplacesIt()
    {
        await Limits.SetLimitAsync("tiny", 7, 30);
        await DamageAsync("string");

        await UntilAsync(async () => await Limits.GetStoredRecordProblemAsync() is not null, "the damage to be reported");
        Assert.Equal(7, (await Limits.GetProvidersAsync()).Single(p => p.Provider == "tiny").Points);

        await Limits.SetLimitAsync("burst", 9, 30);
        Assert.Null(await Limits.GetStoredRecordProblemAsync());
        var data = (string?)await Db.HashGetAsync(Record, "data");
        Assert.Contains("\"Points\":7", data, StringComparison.Ordinal);
        Assert.Contains("\"Points\":9", data, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RecordVanished_IsWrittenAgainFromMemory()
    {
        await Limits.SetLimitAsync("tiny", 7, 30);
        Assert.True(await Db.KeyDeleteAsync(Record));

        await UntilAsync(async () => await Db.KeyExistsAsync(Record), "the record to be written again");
        Assert.Equal(new LimitOverride(7, 30), (await ReadStoredAsync()).Overrides["tiny"]);
    }

    [Fact]
    public async Task RecordVanished_NextChangeIsStoredWithTheOthers_DespiteTheStaleETag()
    {
        await Limits.SetLimitAsync("tiny", 7, 30);
        Assert.True(await Db.KeyDeleteAsync(Record));

        // Straight away, before the grain's own check: its ETag names a record that is gone.
        await Limits.SetLimitAsync("burst", 9, 30);
        var data = (string?)await Db.HashGetAsync(Record, "data");
        Assert.Contains("\"Points\":7", data, StringComparison.Ordinal);
        Assert.Contains("\"Points\":9", data, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RecordWrittenByAnotherHand_IsTaken_AndTheNextChangeAppliesOnTopOfIt()
    {
        await Limits.SetLimitAsync("tiny", 7, 30);
        var data = (string)(await Db.HashGetAsync(Record, "data"))!;

        // Someone else's write: same content with 8 points, and an ETag that is not the grain's.
        await Db.HashSetAsync(Record, [new HashEntry("etag", "someone-else"), new HashEntry("data", data.Replace("\"Points\":7", "\"Points\":8", StringComparison.Ordinal))]);
        await Limits.SetLimitAsync("burst", 9, 30);

        var stored = (string?)await Db.HashGetAsync(Record, "data");
        Assert.Contains("\"Points\":8", stored, StringComparison.Ordinal);
        Assert.Contains("\"Points\":9", stored, StringComparison.Ordinal);
        Assert.Equal(8, (await Limits.GetProvidersAsync()).Single(p => p.Provider == "tiny").Points);
    }

    private async Task DamageAsync(string damage)
    {
        await Db.KeyDeleteAsync(Record);
        switch (damage)
        {
            case "string":
                await Db.StringSetAsync(Record, "not a hash");
                break;
            case "list":
                await Db.ListRightPushAsync(Record, "not a hash");
                break;
            case "garbage data":
                await Db.HashSetAsync(Record, [new HashEntry("etag", "x"), new HashEntry("data", "{{ not json")]);
                break;
            default:
                await Db.HashSetAsync(Record, [new HashEntry("etag", "x"), new HashEntry("data", "{\"$type\":\"System.Int32\",\"x\":[1,2]}")]);
                break;
        }
    }

    /// <summary>The record as Orleans' Redis grain storage reads it (what a new activation would get).</summary>
    private async Task<LimitsState> ReadStoredAsync()
    {
        var silo = (InProcessSiloHandle)_cluster.Primary!;
        var storage = silo.SiloHost!.Services.GetRequiredKeyedService<IGrainStorage>(LimitsGrain.StorageName);
        var state = new GrainState<LimitsState>(new LimitsState());
        await storage.ReadStateAsync(LimitsRecord.StateName, GrainId.Create("limits", ILimitsGrain.DefaultKey), state);
        Assert.True(state.RecordExists);
        return state.State!;
    }

    private static async Task UntilAsync(Func<Task<bool>> condition, string what)
    {
        var watch = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"waited 10 s for {what}");
            await Task.Delay(100);
        }
    }
}
