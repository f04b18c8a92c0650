using OrleansLimiter.Tests.Infrastructure;
using System.Collections.Concurrent;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using OrleansLimiter.Client;

namespace OrleansLimiter.Tests.Client;

/// <summary>
/// The client's side of waiting at the grain, against a scripted cluster: what it is offered it
/// collects at once under the waiter's id, and only a collect's grant is a grant.
/// </summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class WaitAtGrainClientTests
{
    private static readonly WaitReply Offered = Reply(WaitOutcome.Offered);
    private static readonly WaitReply Granted = Reply(WaitOutcome.Granted);
    private static readonly WaitReply StillWaiting = Reply(WaitOutcome.StillWaiting);
    private static readonly WaitReply Cancelled = Reply(WaitOutcome.Cancelled);

    private static WaitReply Reply(WaitOutcome outcome) => new(outcome, WaitRejection.None, null, 0, DateTimeOffset.UnixEpoch, TimeSpan.Zero);

    private static (LimiterClient Client, ScriptedCluster Cluster) Create(params object[] script)
    {
        var cluster = new ScriptedCluster(script);
        var options = Options.Create(new LimiterClientOptions { MinRetryDelay = TimeSpan.FromMilliseconds(10) });
        return (new LimiterClient(cluster, options, TimeProvider.System, NullLogger<LimiterClient>.Instance), cluster);
    }

    private static Task<AcquireResult> Acquire(LimiterClient client) =>
        client.AcquireAsync("openai", new AcquireOptions { MaxWait = TimeSpan.FromSeconds(10) });

    [Fact]
    public async Task AnOffer_IsCollectedAtOnce_UnderTheWaitersId_AndTheCollectGrants()
    {
        var (client, cluster) = Create(Offered, Granted);

        var result = await Acquire(client);

        Assert.True(result.IsGranted);
        Assert.Equal(1, result.Attempts);
        Assert.Equal(["wait", "collect"], cluster.Calls.Select(c => c.Kind));
        Assert.Equal(cluster.Calls[0].Id, cluster.Calls[1].Id);
    }

    [Fact]
    public async Task ACollectTheStoreRefused_GoesOnWaiting_UnderTheSameId()
    {
        var (client, cluster) = Create(Offered, StillWaiting, Offered, Granted);

        var result = await Acquire(client);

        Assert.True(result.IsGranted);
        Assert.Equal(["wait", "collect", "wait", "collect"], cluster.Calls.Select(c => c.Kind));
        Assert.Single(cluster.Calls.Select(c => c.Id).Distinct());
        Assert.True(cluster.Calls[2].IsRenewal);
    }

    [Fact]
    public async Task ACollectAfterTheOfferLapsed_QueuesAfresh_UnderANewId()
    {
        var (client, cluster) = Create(Offered, Cancelled, Offered, Granted);

        var result = await Acquire(client);

        Assert.True(result.IsGranted);
        Assert.Equal(["wait", "collect", "wait", "collect"], cluster.Calls.Select(c => c.Kind));
        Assert.NotEqual(cluster.Calls[0].Id, cluster.Calls[2].Id);
        Assert.False(cluster.Calls[2].IsRenewal);
        Assert.Equal(cluster.Calls[2].Id, cluster.Calls[3].Id);
    }

    [Fact]
    public async Task ACollectWhoseAnswerWasLost_IsSentAgain_UnderTheSameId()
    {
        var (client, cluster) = Create(Offered, new TimeoutException("the answer was lost"), Granted);

        var result = await Acquire(client);

        Assert.True(result.IsGranted);
        Assert.Equal(["wait", "collect", "collect"], cluster.Calls.Select(c => c.Kind));
        Assert.Single(cluster.Calls.Select(c => c.Id).Distinct());
    }

    /// <summary>A cluster whose waits and collects answer, in turn, what the script says (a reply, or an exception to throw).</summary>
    private sealed class ScriptedCluster(object[] script) : ILimiterBackend
    {
        private readonly ConcurrentQueue<object> _script = new(script);

        public List<(string Kind, RequestId Id, bool IsRenewal)> Calls { get; } = [];

        public string Mode => "distributed";

        public Task<WaitReply> WaitAsync(string provider, string key, WaitTicket ticket)
        {
            Calls.Add(("wait", ticket.Id, ticket.IsRenewal));
            return Next();
        }

        public Task<WaitReply> CollectWaitAsync(string provider, string key, RequestId id)
        {
            Calls.Add(("collect", id, true));
            return Next();
        }

        public Task<ConsumeResult> TryConsumeAsync(string provider, string key, long points, CancellationToken cancellationToken) =>
            throw new NotSupportedException("Waits only.");

        public Task<CostResult> TryConsumeCostsAsync(string provider, string key, LimitCost cost, RequestId id, string? tenant, CancellationToken cancellationToken) =>
            throw new NotSupportedException("Waits only.");

        public Task<CostResult> ReserveAsync(string provider, string key, LimitCost estimate, RequestId id, string? tenant, CancellationToken cancellationToken) =>
            throw new NotSupportedException();

        public Task<SettleResult> SettleAsync(string provider, string key, SettleRequest request, CancellationToken cancellationToken) =>
            throw new NotSupportedException("Waits only.");

        public Task<ObservationResult> ObserveProviderAsync(string provider, string key, ProviderObservation[] observations, CancellationToken cancellationToken) =>
            throw new NotSupportedException("Waits only.");

        private Task<WaitReply> Next() => _script.TryDequeue(out var next)
            ? next is Exception error ? Task.FromException<WaitReply>(error) : Task.FromResult((WaitReply)next)
            : throw new InvalidOperationException("The script has run out.");
    }
}
