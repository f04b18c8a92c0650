using System.Diagnostics;
using Microsoft.Extensions.Options;
using OrleansLimiter.Client;
using OrleansLimiter.Client.Distributed;
using OrleansLimiter.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Client;

/// <summary>
/// The second law when a reply is lost for good: the grain decided, Redis spent, but no sending of the
/// batch was answered within the client's resend window, so its callers were told the limiter was
/// unavailable. The client then abandons the batch and the grain gives the grant back, so Redis's
/// ledger equals what callers were told. Replies are lost by <see cref="ReplyLossFilter"/> in the
/// test cluster's silos, after the grain has run.
/// </summary>
[Trait(Tier.Name, Tier.Cluster)]
[Collection(ClusterCollection.Name)]
public sealed class AbandonedBatchTests(LimiterClusterFixture fixture, ITestOutputHelper output)
{
    private GrainLimiterBackend Backend(bool coalesce) => new(
        fixture.Cluster.Client,
        Options.Create(new LimiterClientOptions { ResendWindow = TimeSpan.FromSeconds(1), CoalesceRequests = coalesce }),
        TimeProvider.System);

    [Fact]
    public async Task GrantNobodyWasToldOf_IsGivenBack_AndALateSendingIsRefused()
    {
        var key = TestKeys.Unique();
        var grainKey = LimiterKey.Format("tiny", key);
        var backend = Backend(coalesce: false);
        using var loss = ReplyLossFilter.Lose(grainKey, _ => true);

        var error = await Assert.ThrowsAnyAsync<Exception>(() => backend.TryConsumeAsync("tiny", key, 10, CancellationToken.None));
        Assert.True(LimiterUnavailableException.IsTransient(error), $"told the limiter was unavailable ({error.GetType().Name})");

        // The grain did grant it (and Redis spent it): every lost reply says so, the resends by replay.
        var lost = loss.Lost.ToArray();
        Assert.True(lost.Length >= 2, $"sent, then sent again under the same id ({lost.Length} sendings)");
        Assert.All(lost, l => Assert.Equal([ConsumeOutcome.Granted], l.Reply.Outcomes));
        Assert.All(lost, l => Assert.Equal(90, l.Reply.Remaining));
        Assert.Single(lost.Select(l => l.Batch.RequestId).Distinct());

        await UntilAbandonedAsync(backend);
        var grain = fixture.Cluster.Client.GetGrain<IProviderLimiterGrain>(grainKey);
        Assert.Equal(100, (await grain.GetStateAsync()).Remaining);

        // A sending of the batch that arrives after (delayed in the network) is refused, spending nothing.
        loss.Dispose();
        var late = await grain.TryConsumeBatchAsync(lost[0].Batch with { IsResend = true });
        Assert.Equal([ConsumeOutcome.Refused], late.Outcomes);
        Assert.Equal("100", (string?)await fixture.Db.HashGetAsync($"test:tiny:{key}", "points"));
    }

    [Fact]
    public async Task ManyCallers_SomeRepliesLostForGood_RedisSpentEqualsWhatCallersWereTold()
    {
        var key = TestKeys.Unique();
        var grainKey = LimiterKey.Format("burst", key);
        var backend = Backend(coalesce: true);

        // One batch in seven loses every reply; the rest are answered.
        using var loss = ReplyLossFilter.Lose(grainKey, b => (b.RequestId.GetHashCode() & 0x7fffffff) % 7 == 0);
        long told = 0, refused = 0, unavailable = 0;
        var clock = Stopwatch.StartNew();
        var callers = Enumerable.Range(0, 16).Select(_ => Task.Run(async () =>
        {
            while (clock.Elapsed < TimeSpan.FromSeconds(3))
            {
                try
                {
                    var result = await backend.TryConsumeAsync("burst", key, 1, CancellationToken.None);
                    Interlocked.Increment(ref result.IsAllowed ? ref told : ref refused);
                }
                catch (Exception ex) when (LimiterUnavailableException.IsTransient(ex))
                {
                    Interlocked.Increment(ref unavailable);
                }
            }
        })).ToArray();
        await Task.WhenAll(callers);
        await UntilAbandonedAsync(backend);

        var batchesLost = loss.Lost.Select(l => l.Batch.RequestId).Distinct().Count();
        var grantedInLost = loss.Lost.GroupBy(l => l.Batch.RequestId).Sum(g => g.First().Reply.Outcomes.Count(o => o == ConsumeOutcome.Granted));
        var spent = 1000 - long.Parse((string)(await fixture.Db.HashGetAsync($"ratelimit:burst:{key}", "points"))!, System.Globalization.CultureInfo.InvariantCulture);
        output.WriteLine($"told granted {told}, refused {refused}, told unavailable {unavailable} ({batchesLost} batches lost, {grantedInLost} granted in them); Redis spent {spent}");

        Assert.True(batchesLost >= 3, $"several batches lost their replies ({batchesLost})");
        Assert.True(grantedInLost > 0, "the lost batches had been granted");
        Assert.Equal(told, spent);
    }

    private static async Task UntilAbandonedAsync(GrainLimiterBackend backend)
    {
        var clock = Stopwatch.StartNew();
        while (backend.Abandoning > 0)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"{backend.Abandoning} abandons still unanswered");
            await Task.Delay(20);
        }
    }
}
