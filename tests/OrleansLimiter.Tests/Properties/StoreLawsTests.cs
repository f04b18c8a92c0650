using System.Diagnostics;
using CsCheck;
using Microsoft.Extensions.Logging.Abstractions;
using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Storage;
using OrleansLimiter.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Properties;

/// <summary>
/// The two laws as model-based properties of the stores that decide — the Redis scripts, and the
/// in-memory ledger of a silo without Redis: random sequences of consumes,
/// reservations, settles — settles of real reservations, repeated, of ids never reserved, of plain
/// consumes' ids — and abandons of plain consumes, of reservations and of ids never decided, against one key with two fixed windows (an hour long, so none ends during a case)
/// and a token bucket refilling over a day, compared after every step with a plain model of each limit.
/// Checked: what the store holds equals the model (the bucket within its refill since the case began);
/// what Redis spent equals what callers were told (granted, less refunded, plus charged, less given
/// back); no settle gives back more than its reservation took, no abandon more than its batch still owed.
/// </summary>
[Trait(Tier.Name, Tier.Store)]
[Collection(ClusterCollection.Name)]
public sealed class StoreLawsTests(LimiterClusterFixture fixture, ITestOutputHelper output)
{
    private static readonly LimitSpec[] Limits =
    [
        new(LimitSpec.Requests, LimitAlgorithm.FixedWindow, 12, 3_600_000),
        new("tokens", LimitAlgorithm.FixedWindow, 1_000, 3_600_000),
        new("output", LimitAlgorithm.TokenBucket, 10_000, 86_400_000),
    ];

    private static readonly Gen<long[]> Costs =
        Gen.Select(Gen.Long[0, 3], Gen.Long[0, 400], Gen.Long[0, 4_000], (r, t, o) => new[] { r, t, o });

    private static readonly GenOperationAsync<Actual, Model>[] Operations =
    [
        GenOperationAsync.Create<Actual, Model, long[]>(Costs, c => $"consume {Show(c)}", (a, c) => a.ConsumeAsync(c, reservation: false), (m, c) => m.Consume(c, null)),
        GenOperationAsync.Create<Actual, Model, (long[], Guid)>(Gen.Select(Costs, Gen.Guid), x => $"reserve {Show(x.Item1)}", (a, x) => a.ConsumeAsync(x.Item1, reservation: true, x.Item2), (m, x) => m.Consume(x.Item1, x.Item2)),
        GenOperationAsync.Create<Actual, Model, (int, int, long[], Guid)>(Gen.Select(Gen.Int[0, 3], Gen.Int[0, 1_000], Costs, Gen.Guid), x => $"settle {(SettleKind)x.Item1} #{x.Item2} at {Show(x.Item3)}",
            (a, x) => a.SettleAsync((SettleKind)x.Item1, x.Item2, x.Item3, x.Item4), (m, x) => m.Settle((SettleKind)x.Item1, x.Item2, x.Item3, x.Item4)),
        GenOperationAsync.Create<Actual, Model, (int, int, Guid)>(Gen.Select(Gen.Int[0, 2], Gen.Int[0, 1_000], Gen.Guid), x => $"abandon {(AbandonKind)x.Item1} #{x.Item2}",
            (a, x) => a.AbandonAsync((AbandonKind)x.Item1, x.Item2, x.Item3), (m, x) => m.Abandon((AbandonKind)x.Item1, x.Item2)),
    ];

    private enum SettleKind
    {
        /// <summary>A reservation made in this case (maybe refused, maybe settled before).</summary>
        Reservation,

        /// <summary>The same, again: a repeat.</summary>
        Repeat,

        /// <summary>An id never reserved anywhere.</summary>
        Forged,

        /// <summary>The id of a plain consume (recorded for retries, no reservation).</summary>
        PlainConsume,
    }

    private enum AbandonKind
    {
        /// <summary>A plain consume made in this case (maybe refused, maybe abandoned before).</summary>
        PlainConsume,

        /// <summary>A reservation made in this case (maybe refused, settled or abandoned before).</summary>
        Reservation,

        /// <summary>An id never decided anywhere.</summary>
        NeverDecided,
    }

    [Theory]
    [InlineData("redis")]
    [InlineData("memory")]
    public async Task RandomSequences_TheStoreEqualsTheModel_SpentEqualsTold_NoRefundBeyondAReservation(string store)
    {
        var cases = PropertyRuns.Cases(40);
        Func<ILimitSetStore> make = store == "redis"
            ? () => new RedisLimiterStore(fixture.Connection, NullLogger<RedisLimiterStore>.Instance)
            : () => new InMemoryLimiterStore(TimeProvider.System);
        await PropertyRuns.RunAsync(cases, (seed, iter) =>
            Gen.Const(0).Select(_ => Task.FromResult((new Actual(make()), new Model())))
                .SampleModelBasedAsync(Operations, Equal, seed: seed, iter: iter, threads: 1, printActual: a => a.ToString(), printModel: m => m.ToString()));

        output.WriteLine($"{cases} seeded cases held on the {store} store");
    }

    private static bool Equal(Actual actual, Model model)
    {
        var held = actual.Held;
        var refill = (long)Math.Ceiling(actual.Elapsed.TotalSeconds * Limits[2].Points / (Limits[2].WindowMilliseconds / 1000.0));
        return held[0] == model.Avail[0] && held[1] == model.Avail[1]
            && held[2] >= model.Avail[2] && held[2] <= model.Avail[2] + 1 + refill
            && Limits[0].Points - held[0] == actual.Told[0]
            && Limits[1].Points - held[1] == actual.Told[1];
    }

    private static string Show(long[] costs) => string.Join('/', costs);

    /// <summary>Redis, through the store, on a key of its own; and what its callers were told.</summary>
    private sealed class Actual(ILimitSetStore store)
    {
        private readonly ILimitSetStore _store = store;
        private readonly string _key = "laws:" + TestKeys.Unique();
        private readonly Stopwatch _since = Stopwatch.StartNew();
        private readonly List<Guid> _reservations = [];
        private readonly Dictionary<Guid, long[]> _reserved = [];
        private readonly List<Guid> _plain = [];

        // What each granted batch was charged and has not had back (by settle or abandon).
        private readonly Dictionary<Guid, long[]> _owed = [];

        /// <summary>Per limit, what Redis holds after the last step.</summary>
        public long[] Held { get; private set; } = [.. Limits.Select(l => l.Points)];

        /// <summary>Per limit, granted less refunded plus charged, as callers were told.</summary>
        public long[] Told { get; } = new long[Limits.Length];

        public TimeSpan Elapsed => _since.Elapsed;

        public async Task ConsumeAsync(long[] costs, bool reservation, Guid id = default)
        {
            var requestId = reservation ? new RequestId(id) : RequestId.New();
            var reply = await _store.ConsumeCostsAsync(new CostConsume(_key, Limits, [new CostStoreBatch(requestId, [costs], Reservation: reservation)]));
            Held = [.. reply.Limits.Select(l => l.Remaining)];
            var granted = reply.Decisions[0][0] == 0;
            if (granted)
            {
                Add(costs, +1);
                _owed[requestId.Value] = costs;
            }

            if (reservation)
            {
                _reservations.Add(id);
                if (granted)
                {
                    _reserved[id] = costs;
                }
            }
            else
            {
                _plain.Add(requestId.Value);
            }
        }

        public async Task SettleAsync(SettleKind kind, int index, long[] actual, Guid forged)
        {
            var id = Pick(kind, index, _reservations, _plain, forged);
            var reply = await _store.SettleAsync(new CostSettle(_key, Limits, new RequestId(id), 600_000, actual));
            Held = [.. reply.Limits.Select(l => l.Remaining)];
            if (reply.Outcome == SettleOutcome.Replayed)
            {
                // Told again what the first settle (or an abandon) did: nothing changed now.
                return;
            }

            if (reply.Outcome == SettleOutcome.Settled)
            {
                _owed.Remove(id);
            }

            for (var i = 0; i < Limits.Length; i++)
            {
                var (refunded, charged, _) = reply.Amounts[i];
                var reserved = _reserved.TryGetValue(id, out var r) ? r[i] : 0;
                if (refunded > reserved || (refunded > 0 && reply.Outcome != SettleOutcome.Settled))
                {
                    throw new InvalidOperationException($"{reply.Outcome} settle of {id:N} refunded {refunded} of '{Limits[i].Name}', which it reserved {reserved} of.");
                }

                Told[i] += charged - refunded;
            }
        }

        public async Task AbandonAsync(AbandonKind kind, int index, Guid neverDecided)
        {
            var id = Pick(kind, index, _plain, _reservations, neverDecided);
            var reply = await _store.AbandonCostsAsync(new CostAbandon(_key, Limits, new RequestId(id)));
            Held = [.. reply.Limits.Select(l => l.Remaining)];
            var owed = _owed.Remove(id, out var o) ? o : new long[Limits.Length];
            for (var i = 0; i < Limits.Length; i++)
            {
                if (reply.Released[i] > owed[i])
                {
                    throw new InvalidOperationException($"Abandon of {id:N} gave back {reply.Released[i]} of '{Limits[i].Name}', which it owed {owed[i]} of.");
                }

                Told[i] -= reply.Released[i];
            }
        }

        public override string ToString() => $"Redis holds {Show(Held)}; told spent {Show(Told)}";

        private void Add(long[] costs, int sign)
        {
            for (var i = 0; i < costs.Length; i++)
            {
                Told[i] += sign * costs[i];
            }
        }
    }

    /// <summary>Each limit as a number; reservations as what they took.</summary>
    private sealed class Model
    {
        private readonly List<Guid> _reservations = [];
        private readonly Dictionary<Guid, long[]> _open = [];
        private readonly HashSet<Guid> _settled = [];
        private readonly List<Guid> _plain = [];

        // Per plain consume (in order), what it was granted, until it is abandoned; null when refused.
        private readonly List<long[]?> _plainGrants = [];

        public long[] Avail { get; } = [.. Limits.Select(l => l.Points)];

        public Task Consume(long[] costs, Guid? reservation)
        {
            var fits = costs.Select((c, i) => c == 0 || c <= Avail[i]).All(f => f);
            if (fits)
            {
                for (var i = 0; i < costs.Length; i++)
                {
                    Avail[i] -= costs[i];
                }
            }

            if (reservation is { } id)
            {
                _reservations.Add(id);
                if (fits)
                {
                    _open[id] = costs;
                }
            }
            else
            {
                // The actual side draws a fresh id for a plain consume; the model only counts them.
                _plain.Add(Guid.Empty);
                _plainGrants.Add(fits ? costs : null);
            }

            return Task.CompletedTask;
        }

        public Task Settle(SettleKind kind, int index, long[] actual, Guid forged)
        {
            var id = kind == SettleKind.PlainConsume ? Guid.Empty : Pick(kind, index, _reservations, _plain, forged);
            if (kind == SettleKind.PlainConsume || !_open.Remove(id, out var reserved) || !_settled.Add(id))
            {
                return Task.CompletedTask;
            }

            for (var i = 0; i < Limits.Length; i++)
            {
                var delta = actual[i] - reserved[i];
                Avail[i] = delta < 0
                    ? Math.Min(Limits[i].Points, Avail[i] - delta)
                    : Avail[i] - Math.Min(delta, Avail[i]);
            }

            return Task.CompletedTask;
        }

        /// <summary>What the batch was granted goes back (every window is the one it was charged to, and a bucket is capped at full); once.</summary>
        public Task Abandon(AbandonKind kind, int index)
        {
            long[]? granted = null;
            if (kind == AbandonKind.PlainConsume && _plainGrants.Count > 0)
            {
                granted = _plainGrants[index % _plainGrants.Count];
                _plainGrants[index % _plainGrants.Count] = null;
            }
            else if (kind == AbandonKind.Reservation && _reservations.Count > 0)
            {
                var id = _reservations[index % _reservations.Count];
                if (_open.Remove(id, out var reserved) && _settled.Add(id))
                {
                    granted = reserved;
                }
            }

            for (var i = 0; granted is not null && i < Limits.Length; i++)
            {
                Avail[i] = Math.Min(Limits[i].Points, Avail[i] + granted[i]);
            }

            return Task.CompletedTask;
        }

        public override string ToString() => $"model holds {Show(Avail)}";
    }

    /// <summary>The id an abandon of <paramref name="kind"/> names (the same on both sides).</summary>
    private static Guid Pick(AbandonKind kind, int index, List<Guid> plain, List<Guid> reservations, Guid neverDecided) => kind switch
    {
        AbandonKind.PlainConsume when plain.Count > 0 => plain[index % plain.Count],
        AbandonKind.Reservation when reservations.Count > 0 => reservations[index % reservations.Count],
        _ => neverDecided,
    };

    /// <summary>The id a settle of <paramref name="kind"/> names (the same on both sides: they saw the same steps).</summary>
    private static Guid Pick(SettleKind kind, int index, List<Guid> reservations, List<Guid> plain, Guid forged) => kind switch
    {
        SettleKind.Reservation or SettleKind.Repeat when reservations.Count > 0 =>
            reservations[kind == SettleKind.Repeat ? index % reservations.Count : reservations.Count - 1],
        SettleKind.PlainConsume when plain.Count > 0 => plain[index % plain.Count],
        _ => forged,
    };
}
