using System.Collections.Concurrent;
using System.Globalization;
using CsCheck;
using OrleansLimiter.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Properties;

/// <summary>
/// The two laws as properties of the raw grain interface, as any worker can call it, against real
/// Redis through a two-silo cluster: random sequences of consumes (sent again under their ids, as after
/// a lost answer), one-number consumes, reservations, settles (real, repeated, forged, of plain consumes'
/// ids), provider reports and resets, run by one caller or by three at once, on a key with two
/// windows an hour long; and on the seed's one limit, batches sent again and abandoned (also stating
/// other costs than they were sent with), waiters offered capacity that collect it, collect it twice,
/// cancel, or never collect. Checked: each window's spent count in Redis equals what callers were told
/// (granted, less refunded, plus charged, plus what provider reports lowered); a request sent again is
/// told the decision it was told first; no settle gives back more than its reservation took.
/// </summary>
[Trait(Tier.Name, Tier.Cluster)]
[Collection(ClusterCollection.Name)]
public sealed class GrainLawsTests(LimiterClusterFixture fixture, ITestOutputHelper output)
{
    private static readonly string[] Names = ["requests", "tokens"];
    private static readonly long[] Capacity = [12, 1_000];

    private enum Kind
    {
        Consume,
        ConsumeAgain,
        Points,
        Reserve,
        Settle,
        SettleAgain,
        SettleForged,
        SettlePlain,
        Report,
        Reset,
    }

    private sealed record Op(Kind Kind, long Requests, long Tokens, int Index)
    {
        public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Kind}({Requests},{Tokens},#{Index})");
    }

    private static readonly Gen<Op> AnOp = Gen.Select(Gen.Int[0, 9], Gen.Long[0, 3], Gen.Long[0, 300], Gen.Int[0, 50], (k, r, t, i) => new Op((Kind)k, r, t, i));

    private enum SeedKind
    {
        Batch,
        BatchAgain,
        Abandon,
        AbandonInflated,
        AbandonForged,
        SettleForged,
        Wait,
        Collect,
        CancelWait,
    }

    private int _waiterGrants;

    private sealed record SeedOp(SeedKind Kind, long[] Points, int Index)
    {
        public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Kind}([{string.Join(',', Points)}],#{Index})");
    }

    private static readonly Gen<SeedOp> ASeedOp = Gen.Select(Gen.Int[0, 8], Gen.Long[1, 6].Array[1, 4], Gen.Int[0, 50], (k, p, i) => new SeedOp((SeedKind)k, p, i));

    [Fact]
    public async Task SeedLimit_BatchesResentAndAbandoned_Waiters_ForgedAbandonsAndSettles_SpentEqualsTold()
    {
        var cases = PropertyRuns.Cases(25);
        await PropertyRuns.RunAsync(cases, (seed, iter) =>
            Check.SampleAsync(ASeedOp.Array[1, 30], SeedCaseAsync, seed: seed, iter: iter, threads: 1, print: ops => string.Join(' ', ops.Select(o => o.ToString()))));
        output.WriteLine($"{cases} seeded cases on the seed's limit held; {_waiterGrants} waiters' grants collected");

        // The waiters' steps were exercised, not only generated.
        Assert.True(_waiterGrants > 0, "No waiter was granted in any case.");
    }

    private async Task SeedCaseAsync(SeedOp[] ops)
    {
        var key = TestKeys.Unique();
        var grain = fixture.Cluster.Client.GetGrain<IProviderLimiterGrain>(LimiterKey.Format("lawseed", key));
        var batches = new List<(RequestId Id, long[] Points, long Granted)>();
        var waiters = new List<(RequestId Id, long Points)>();
        var collected = new HashSet<RequestId>();
        long told = 0;
        foreach (var op in ops)
        {
            var earlier = batches.Count > 0 ? batches[op.Index % batches.Count] : default;
            switch (op.Kind)
            {
                case SeedKind.Batch:
                case SeedKind.BatchAgain when batches.Count == 0:
                {
                    var id = RequestId.New();
                    var reply = await grain.TryConsumeBatchAsync(new ConsumeBatch(op.Points, id));
                    var granted = op.Points.Where((_, i) => reply.Outcomes[i] == ConsumeOutcome.Granted).Sum();
                    batches.Add((id, op.Points, granted));
                    told += granted;
                    break;
                }

                case SeedKind.BatchAgain:
                {
                    // Sent again after a lost answer: told what it was granted first (or, once abandoned, refused), nothing spent again.
                    var reply = await grain.TryConsumeBatchAsync(new ConsumeBatch(earlier.Points, earlier.Id, IsResend: true));
                    var granted = earlier.Points.Where((_, i) => reply.Outcomes[i] == ConsumeOutcome.Granted).Sum();
                    if (granted != earlier.Granted)
                    {
                        throw new InvalidOperationException($"Batch {earlier.Id} sent again was told {granted} granted; it was told {earlier.Granted} (and spends nothing again).");
                    }

                    break;
                }

                case SeedKind.Abandon:
                case SeedKind.AbandonInflated:
                case SeedKind.AbandonForged:
                {
                    // An abandon gives back at most what the batch was granted, whatever costs it states.
                    var (id, points, granted) = op.Kind == SeedKind.AbandonForged || batches.Count == 0
                        ? (RequestId.New(), op.Points, 0L)
                        : earlier;
                    var stated = op.Kind == SeedKind.AbandonInflated ? [.. points.Select(p => p * 10)] : points;
                    var reply = await grain.AbandonBatchAsync(new ConsumeBatch(stated, id));
                    if (reply.Released > granted)
                    {
                        throw new InvalidOperationException($"Abandon of {id} released {reply.Released}; it was granted {granted}.");
                    }

                    told -= reply.Released;
                    var at = batches.FindIndex(b => b.Id == id);
                    if (at >= 0)
                    {
                        // Whatever is told of it from now on: refused (its grant, if any, went back or its window ended).
                        batches[at] = (id, points, 0);
                    }

                    break;
                }

                case SeedKind.Wait:
                {
                    // A waiter in the queue; one that is offered and never collected spends nothing.
                    var id = RequestId.New();
                    var reply = await grain.WaitAsync(new WaitTicket(id, $"t{op.Index % 3}", WaitPriority.Normal, op.Points[0], TimeSpan.FromMilliseconds(100)));
                    if (reply.Outcome is WaitOutcome.Offered or WaitOutcome.StillWaiting)
                    {
                        waiters.Add((id, op.Points[0]));
                    }

                    break;
                }

                case SeedKind.Collect:
                case SeedKind.CancelWait:
                {
                    // Collected (perhaps again, or after its offer lapsed), or cancelled (perhaps after
                    // it was collected): a grant is told once, whichever call tells it.
                    var (id, points) = waiters.Count > 0 ? waiters[op.Index % waiters.Count] : (RequestId.New(), 1);
                    var reply = op.Kind == SeedKind.Collect ? await grain.CollectWaitAsync(id) : await grain.CancelWaitAsync(id);
                    if (reply.Outcome == WaitOutcome.Granted && collected.Add(id))
                    {
                        told += points;
                        Interlocked.Increment(ref _waiterGrants);
                    }

                    break;
                }

                case SeedKind.SettleForged:
                {
                    var reply = await grain.SettleAsync(new SettleRequest(RequestId.New(), LimitCost.Requests(0)));
                    if (reply.Outcome != SettleOutcome.Unknown)
                    {
                        throw new InvalidOperationException($"A settle of an id never reserved was {reply.Outcome}.");
                    }

                    break;
                }
            }
        }

        var held = (string?)await fixture.Db.HashGetAsync($"test:lawseed:{key}", "points");
        var spent = held is null ? 0 : 50 - long.Parse(held, CultureInfo.InvariantCulture);
        if (spent != told)
        {
            throw new InvalidOperationException($"Redis spent {spent}; callers were told {told}.");
        }
    }

    [Fact]
    public Task OneCaller_RandomSequences_SpentEqualsTold() => RunAsync(lanes: 1, PropertyRuns.Cases(25));

    [Fact]
    public Task ThreeCallersAtOnce_RandomSequences_SpentEqualsTold() => RunAsync(lanes: 3, PropertyRuns.Cases(25));

    private async Task RunAsync(int lanes, int cases)
    {
        await PropertyRuns.RunAsync(cases, (seed, iter) =>
            Check.SampleAsync(AnOp.Array[1, 40], ops => CaseAsync(ops, lanes), seed: seed, iter: iter, threads: 1, print: ops => string.Join(' ', ops.Select(o => o.ToString()))));

        output.WriteLine($"{cases} seeded cases with {lanes} caller(s) held");
    }

    private async Task CaseAsync(Op[] ops, int lanes)
    {
        var key = TestKeys.Unique();
        var grain = fixture.Cluster.Client.GetGrain<IProviderLimiterGrain>(LimiterKey.Format("laws", key));
        var state = new CaseState();

        // Resets are ordered against everything else only for one caller; several at once leave them out.
        var lane = ops.Where(o => lanes == 1 || o.Kind != Kind.Reset).Select((o, i) => (o, i)).GroupBy(x => x.i % lanes, x => x.o);
        await Task.WhenAll(lane.Select(async ops => { foreach (var op in ops) { await StepAsync(grain, op, state); } }));

        var hash = (await fixture.Db.HashGetAllAsync($"test:laws:{key}")).ToDictionary(e => (string)e.Name!, e => long.Parse((string)e.Value!, CultureInfo.InvariantCulture));
        var spent = new[]
        {
            hash.TryGetValue("points", out var requests) ? Capacity[0] - requests : 0,
            hash.TryGetValue("tokens:points", out var tokens) ? Capacity[1] - tokens : 0,
        };
        for (var i = 0; i < Names.Length; i++)
        {
            if (spent[i] != state.Told[i])
            {
                throw new InvalidOperationException($"Redis spent {spent[i]} of '{Names[i]}'; callers were told {state.Told[i]}.");
            }
        }
    }

    private static async Task StepAsync(IProviderLimiterGrain grain, Op op, CaseState state)
    {
        var cost = LimitCost.Of(("requests", op.Requests), ("tokens", op.Tokens));
        switch (op.Kind)
        {
            case Kind.Consume:
            case Kind.ConsumeAgain:
            {
                var again = op.Kind == Kind.ConsumeAgain && state.Consumes.Count > 0;
                var (id, sent) = again ? state.Consumes[op.Index % state.Consumes.Count] : (RequestId.New(), cost);
                var reply = await grain.TryConsumeCostsAsync(CostBatch.Of([sent], id, isResend: again));
                var granted = reply.Decision(0).IsAllowed;
                if (again)
                {
                    // Told the first decision, and nothing spent again.
                    if (state.FirstAnswer[id] != granted)
                    {
                        throw new InvalidOperationException($"Consume {id} sent again was told {(granted ? "granted" : "refused")}, first {(state.FirstAnswer[id] ? "granted" : "refused")}.");
                    }

                    break;
                }

                state.FirstAnswer[id] = granted;
                state.Consumes.Add((id, cost));
                state.Told.Add(granted ? [op.Requests, op.Tokens] : [0, 0]);
                break;
            }

            case Kind.Points:
            {
                var reply = await grain.TryConsumeBatchAsync(new ConsumeBatch([op.Requests + 1], RequestId.New()));
                state.Told.Add(reply.Outcomes[0] == ConsumeOutcome.Granted ? [op.Requests + 1, 0] : [0, 0]);
                break;
            }

            case Kind.Reserve:
            {
                var id = RequestId.New();
                var reply = await grain.TryConsumeCostsAsync(CostBatch.Reservation(cost, id));
                if (reply.Decision(0).IsAllowed)
                {
                    state.Reserved[id] = [op.Requests, op.Tokens];
                    state.Told.Add([op.Requests, op.Tokens]);
                }

                // Known to the other callers only now, with what it reserved.
                state.Reservations.Add(id);

                break;
            }

            case Kind.Settle:
            case Kind.SettleAgain:
            case Kind.SettleForged:
            case Kind.SettlePlain:
            {
                var id = op.Kind switch
                {
                    Kind.Settle when state.Reservations.Count > 0 => state.Reservations[^1],
                    Kind.SettleAgain when state.Reservations.Count > 0 => state.Reservations[op.Index % state.Reservations.Count],
                    Kind.SettlePlain when state.Consumes.Count > 0 => state.Consumes[op.Index % state.Consumes.Count].Id,
                    _ => RequestId.New(),
                };
                var reply = await grain.SettleAsync(new SettleRequest(id, cost));
                if (reply.Outcome == SettleOutcome.Replayed)
                {
                    // Told again what the first settle did: nothing changed now.
                    break;
                }

                var reserved = state.Reserved.TryGetValue(id, out var r) ? r : [0, 0];
                var change = new long[2];
                for (var i = 0; i < Names.Length; i++)
                {
                    var amounts = reply.Limits.Single(l => l.Name == Names[i]);
                    if (amounts.Refunded > reserved[i] || (reply.Outcome != SettleOutcome.Settled && amounts.Refunded + amounts.Charged > 0))
                    {
                        throw new InvalidOperationException($"{reply.Outcome} settle of {id} gave back {amounts.Refunded} of '{Names[i]}' (reserved {reserved[i]}) and charged {amounts.Charged}.");
                    }

                    change[i] = amounts.Charged - amounts.Refunded;
                }

                state.Told.Add(change);
                break;
            }

            case Kind.Report:
            {
                // The provider says fewer tokens remain: the shared count goes down (spent by others).
                var reply = await grain.ObserveProviderAsync([new ProviderObservation("tokens", op.Tokens * 3)]);
                state.Told.Add([0, reply.Lowered[0]]);
                break;
            }

            case Kind.Reset:
                await grain.ResetAsync();
                state.Told.Reset();
                break;
        }
    }

    /// <summary>What one case's callers were told, shared by its callers.</summary>
    private sealed class CaseState
    {
        public ConcurrentList<(RequestId Id, LimitCost Cost)> Consumes { get; } = new();

        public ConcurrentDictionary<RequestId, bool> FirstAnswer { get; } = new();

        public ConcurrentList<RequestId> Reservations { get; } = new();

        public ConcurrentDictionary<RequestId, long[]> Reserved { get; } = new();

        public Counts Told { get; } = new();
    }

    private sealed class Counts
    {
        private readonly long[] _counts = new long[Names.Length];

        public long this[int index] { get { lock (_counts) { return _counts[index]; } } }

        public void Add(long[] change)
        {
            lock (_counts)
            {
                for (var i = 0; i < _counts.Length; i++)
                {
                    _counts[i] += change[i];
                }
            }
        }

        public void Reset()
        {
            lock (_counts)
            {
                Array.Clear(_counts);
            }
        }
    }

    private sealed class ConcurrentList<T>
    {
        private readonly List<T> _items = [];

        public int Count { get { lock (_items) { return _items.Count; } } }

        public T this[Index index] { get { lock (_items) { return _items[index]; } } }

        public void Add(T item)
        {
            lock (_items)
            {
                _items.Add(item);
            }
        }
    }
}
