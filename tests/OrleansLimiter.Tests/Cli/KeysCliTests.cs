using System.Text.Json.Nodes;
using OrleansLimiter.Security;
using OrleansLimiter.Tests.Infrastructure;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Cli;

/// <summary><c>limiter keys</c> as a real process against the two-silo process cluster.</summary>
[Trait(Tier.Name, Tier.Process)]
[Collection(ProcessClusterCollection.Name)]
public sealed class KeysCliTests(ProcessClusterFixture fixture, ITestOutputHelper output)
{
    private Task<ProcessRunner.Result> Limiter(string arguments) =>
        ProcessRunner.RunAsync(RepoPaths.CliDll, arguments, fixture.ClientEnvironment);

    [Fact]
    public async Task Create_PrintsTheKeyOnce_RedisKeepsOnlyItsHash_ListAndRevoke()
    {
        var create = await Limiter("keys create --tenant team-cli --priority batch --max-wait 7.5 --json");
        output.WriteLine(create.Stdout + create.Stderr);
        Assert.Equal(0, create.ExitCode);
        var created = JsonNode.Parse(create.Stdout)!;
        var key = (string)created["key"]!;
        var id = (string)created["id"]!;
        Assert.StartsWith(VirtualKeyFormat.Prefix, key, StringComparison.Ordinal);
        Assert.Equal($"vk_{VirtualKeyFormat.Sha256(key)[..12]}", id);
        try
        {
            // Nowhere in Redis is the key itself; its hash is.
            var everything = new List<string>();
            var server = fixture.Connection.GetServers().Single();
            await foreach (var redisKey in server.KeysAsync(pattern: "*"))
            {
                everything.Add(await DumpAsync(fixture.Db, redisKey));
            }

            Assert.DoesNotContain(everything, text => text.Contains(key, StringComparison.Ordinal));
            Assert.Contains(everything, text => text.Contains(VirtualKeyFormat.Sha256(key), StringComparison.Ordinal));

            var list = await Limiter("keys list");
            Assert.Equal(0, list.ExitCode);
            Assert.Matches($@"{id}\s+team-cli\s+created .*priority Batch\s+max wait 7\.5 s", list.Stdout);
            Assert.DoesNotContain(key, list.Stdout, StringComparison.Ordinal);

            var revoke = await Limiter($"keys revoke {id}");
            Assert.Equal(0, revoke.ExitCode);
            Assert.Contains($"{id}: revoked", revoke.Stdout, StringComparison.Ordinal);
            var listed = JsonNode.Parse((await Limiter("keys --json")).Stdout)!.AsArray().Single(k => (string?)k!["id"] == id)!;
            Assert.NotNull((string?)listed["revokedAt"]);

            var again = await Limiter($"keys revoke {id}");
            Assert.Equal(2, again.ExitCode);
            Assert.Contains("no valid key", again.Stderr, StringComparison.Ordinal);
        }
        finally
        {
            await Limiter($"keys revoke {id}");
        }
    }

    [Theory]
    [InlineData("keys create", "--tenant")]
    [InlineData("keys create --tenant t --max-wait -1", "--max-wait")]
    [InlineData("keys create --tenant t --priority urgent", "--priority")]
    public async Task BadInput_IsAUsageErrorNamingTheOption(string arguments, string named)
    {
        var run = await Limiter(arguments);
        Assert.Equal(2, run.ExitCode);
        Assert.Contains(named, run.Stderr, StringComparison.Ordinal);
    }

    private static async Task<string> DumpAsync(IDatabase db, RedisKey key) =>
        await db.KeyTypeAsync(key) switch
        {
            RedisType.String => $"{key} {await db.StringGetAsync(key)}",
            RedisType.Hash => $"{key} {string.Join(' ', (await db.HashGetAllAsync(key)).Select(e => $"{e.Name}={e.Value}"))}",
            _ => key.ToString(),
        };
}
