namespace OrleansLimiter.Soak;

/// <summary>The kinds of fault the schedule injects.</summary>
internal enum FaultKind
{
    SiloKill,
    SiloTerm,
    RedisPause,
    RedisRestartedEmpty,
    FlushAll,
    ClientKill,
    LimitsSet,
    Reset,
    NetworkFault,
}

/// <summary>
/// One fault: what, where (a silo or client slot, taken modulo what is running), for how long, and
/// the value it sets. Every number is drawn from the seed, so a seed replays the same faults in the
/// same order; only the load and the machine decide how many fit in the run.
/// </summary>
internal sealed record Fault(int Number, FaultKind Kind, TimeSpan GapBefore, int Target, TimeSpan Length, TimeSpan Length2, long Value)
{
    public override string ToString() => Kind switch
    {
        FaultKind.SiloKill => $"silo SIGKILL (slot {Target}), restarted after {Length.TotalSeconds:0.0} s",
        FaultKind.SiloTerm => $"silo SIGTERM (slot {Target}), restarted once it exits",
        FaultKind.RedisPause => $"Redis SIGSTOP for {Length.TotalSeconds:0.0} s",
        FaultKind.RedisRestartedEmpty => $"Redis killed, restarted empty after {Length.TotalSeconds:0.0} s",
        FaultKind.FlushAll => "FLUSHALL",
        FaultKind.ClientKill => $"client SIGKILL (slot {Target}) with requests in flight, replaced",
        FaultKind.LimitsSet => $"limits set fw --points {Value}",
        FaultKind.Reset => "reset fw",
        FaultKind.NetworkFault => $"silo3 to Redis: {Value} ms delay for {Length.TotalSeconds:0.0} s, then a blackhole for {Length2.TotalSeconds:0.0} s",
        _ => Kind.ToString(),
    };
}

/// <summary>The seeded, endless sequence of faults of a run.</summary>
internal static class Schedule
{
    public static IEnumerable<Fault> Create(int seed)
    {
        var random = new Random(seed);
        var kinds = Enum.GetValues<FaultKind>();
        for (var number = 1; ; number++)
        {
            var kind = kinds[random.Next(kinds.Length)];
            var gap = TimeSpan.FromMilliseconds(random.Next(100, 700));
            var target = random.Next(1000);
            var length = TimeSpan.FromMilliseconds(kind switch
            {
                FaultKind.RedisPause => random.Next(1000, 5001),
                FaultKind.SiloKill => random.Next(500, 3001),
                FaultKind.RedisRestartedEmpty => random.Next(200, 2001),
                FaultKind.NetworkFault => random.Next(1000, 3001),
                _ => 0,
            });
            var length2 = TimeSpan.FromMilliseconds(kind == FaultKind.NetworkFault ? random.Next(1000, 5001) : 0);
            var value = kind switch
            {
                FaultKind.LimitsSet => SoakLimits.FixedWindowChoices[random.Next(SoakLimits.FixedWindowChoices.Length)],
                FaultKind.NetworkFault => random.Next(100, 1001),
                _ => 0,
            };
            yield return new Fault(number, kind, gap, target, length, length2, value);
        }
    }
}
