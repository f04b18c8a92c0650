using OrleansLimiter.Tests.Infrastructure;
using System.Collections.Immutable;
using System.Globalization;
using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using OrleansLimiter.Grains.Hosting;

namespace OrleansLimiter.Tests.Grains.Hosting;

/// <summary>
/// <see cref="MembershipRecovery"/> against a table that behaves like Orleans' Redis membership table
/// (a version row; inserts and updates only at the next version), with time under the test's control.
/// The real thing, under load with real silos and Redis, is in the fault tests.
/// </summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class MembershipRecoveryTests
{
    private static readonly SiloAddress A = SiloAddress.New(IPAddress.Loopback, 11111, 1);
    private static readonly SiloAddress B = SiloAddress.New(IPAddress.Loopback, 11112, 1);

    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-11-30T10:00:00Z", CultureInfo.InvariantCulture));
    private readonly RedisLikeTable _table = new();

    [Fact]
    public async Task RowPresent_NothingWritten()
    {
        _table.Put(Entry(A), Entry(B));
        var a = Recovery(A, new Membership(6, (A, SiloStatus.Active), (B, SiloStatus.Active)));

        Assert.Equal(MembershipRecovery.Outcome.Present, await a.CheckAsync());
        Assert.Equal(2, _table.Version);
        Assert.Equal(0, _table.Writes);
    }

    [Fact]
    public async Task TableVanished_RowsPutBack_VersionRaisedAboveTheLastSeen_OnceBothAreBack()
    {
        _table.Put(Entry(A), Entry(B));
        var viewA = new Membership(6, (A, SiloStatus.Active), (B, SiloStatus.Active));
        var viewB = new Membership(6, (A, SiloStatus.Active), (B, SiloStatus.Active));
        var a = Recovery(A, viewA);
        var b = Recovery(B, viewB);
        await a.CheckAsync();
        await b.CheckAsync();

        _table.Vanish();
        _time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(MembershipRecovery.Outcome.Reinserted, await a.CheckAsync());
        var row = _table.Rows[A];
        Assert.Equal(SiloStatus.Active, row.Status);
        Assert.Equal(_time.GetUtcNow().UtcDateTime, row.IAmAliveTime);
        Assert.NotNull(row.SuspectTimes);
        Assert.Empty(row.SuspectTimes);
        Assert.Equal(1, _table.Version);

        // B is not back yet: a table newer than B's view without B would tell B it is dead.
        Assert.Equal(MembershipRecovery.Outcome.WaitingForOthers, await a.CheckAsync());
        Assert.Equal(1, _table.Version);

        Assert.Equal(MembershipRecovery.Outcome.Reinserted, await b.CheckAsync());
        Assert.Equal(MembershipRecovery.Outcome.VersionRaised, await a.CheckAsync());
        Assert.Equal(7, _table.Version);
        Assert.Equal(1, viewA.Refreshes);

        // B finds the version above its view already: nothing to write, only its view to refresh.
        var writes = _table.Writes;
        Assert.Equal(MembershipRecovery.Outcome.VersionRaised, await b.CheckAsync());
        Assert.Equal(writes, _table.Writes);
        Assert.Equal(1, viewB.Refreshes);
        Assert.Equal(MembershipRecovery.Outcome.Present, await a.CheckAsync());
        Assert.Equal([A, B], _table.Rows.Keys.Order());
    }

    [Fact]
    public async Task AnotherSiloNeverComesBack_VersionRaisedAfterTheGrace()
    {
        _table.Put(Entry(A), Entry(B));
        var view = new Membership(6, (A, SiloStatus.Active), (B, SiloStatus.Active));
        var a = Recovery(A, view);
        await a.CheckAsync();
        _table.Vanish();

        Assert.Equal(MembershipRecovery.Outcome.Reinserted, await a.CheckAsync());
        _time.Advance(MembershipRecovery.RejoinGrace - TimeSpan.FromSeconds(1));
        Assert.Equal(MembershipRecovery.Outcome.WaitingForOthers, await a.CheckAsync());
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(MembershipRecovery.Outcome.VersionRaised, await a.CheckAsync());
        Assert.Equal(7, _table.Version);
        Assert.Equal([A], _table.Rows.Keys);
    }

    [Theory]
    [InlineData(SiloStatus.ShuttingDown)]
    [InlineData(SiloStatus.Stopping)]
    [InlineData(SiloStatus.Dead)]
    public async Task SiloNotActive_StaysOut(SiloStatus status)
    {
        _table.Put(Entry(A));
        var view = new Membership(3, (A, SiloStatus.Active));
        var a = Recovery(A, view);
        await a.CheckAsync();
        _table.Vanish();
        view.Set(A, status);

        Assert.Equal(MembershipRecovery.Outcome.NotReinserted, await a.CheckAsync());
        Assert.Empty(_table.Rows);
    }

    [Fact]
    public async Task RowNeverSeen_NotInvented()
    {
        _table.Vanish();
        var a = Recovery(A, new Membership(3, (A, SiloStatus.Active)));

        Assert.Equal(MembershipRecovery.Outcome.NotReinserted, await a.CheckAsync());
        Assert.Empty(_table.Rows);
    }

    [Fact]
    public async Task TableUnreachable_Throws_ThenRepairsWhenBack()
    {
        _table.Put(Entry(A));
        var a = Recovery(A, new Membership(3, (A, SiloStatus.Active)));
        await a.CheckAsync();
        _table.Vanish();
        _table.Unreachable = true;

        await Assert.ThrowsAsync<TimeoutException>(() => a.CheckAsync());
        _table.Unreachable = false;
        Assert.Equal(MembershipRecovery.Outcome.Reinserted, await a.CheckAsync());
    }

    private MembershipRecovery Recovery(SiloAddress silo, Membership view) =>
        new(_table, new LocalSilo(silo), view, _time, NullLogger<MembershipRecovery>.Instance);

    private static MembershipEntry Entry(SiloAddress silo) => new()
    {
        SiloAddress = silo,
        SiloName = "silo-" + silo.Endpoint.Port,
        HostName = "host",
        Status = SiloStatus.Active,
        ProxyPort = silo.Endpoint.Port + 1000,
        StartTime = DateTime.UnixEpoch,
        IAmAliveTime = DateTime.UnixEpoch,
        SuspectTimes = [Tuple.Create(B, DateTime.UnixEpoch)],
    };

    /// <summary>Orleans' Redis membership table, in memory: a version row, writes only at the next version.</summary>
    private sealed class RedisLikeTable : IMembershipTable
    {
        public int? Version { get; private set; }

        public Dictionary<SiloAddress, MembershipEntry> Rows { get; } = [];

        public int Writes { get; private set; }

        public bool Unreachable { get; set; }

        public void Put(params MembershipEntry[] entries)
        {
            Version ??= 0;
            foreach (var entry in entries)
            {
                Rows[entry.SiloAddress] = entry;
                Version++;
            }
        }

        public void Vanish()
        {
            Version = null;
            Rows.Clear();
        }

        public Task InitializeMembershipTable(bool tryInitTableVersion)
        {
            Reach();
            if (tryInitTableVersion)
            {
                Version ??= 0;
            }

            return Task.CompletedTask;
        }

        public Task<MembershipTableData> ReadAll()
        {
            Reach();
            if (Version is not { } version)
            {
                throw new InvalidOperationException("The membership table version is missing.");
            }

            var etag = version.ToString(CultureInfo.InvariantCulture);
            return Task.FromResult(new MembershipTableData(Rows.Values.Select(e => Tuple.Create(e, etag)).ToList(), new TableVersion(version, etag)));
        }

        public Task<bool> InsertRow(MembershipEntry entry, TableVersion tableVersion) => Task.FromResult(Upsert(entry, tableVersion, exists: false));

        public Task<bool> UpdateRow(MembershipEntry entry, string etag, TableVersion tableVersion) =>
            Task.FromResult(etag == (tableVersion.Version - 1).ToString(CultureInfo.InvariantCulture) && Upsert(entry, tableVersion, exists: true));

        public Task DeleteMembershipTableEntries(string clusterId) => throw new NotSupportedException();

        public Task<MembershipTableData> ReadRow(SiloAddress key) => throw new NotSupportedException();

        public Task UpdateIAmAlive(MembershipEntry entry) => throw new NotSupportedException();

        public Task CleanupDefunctSiloEntries(DateTimeOffset beforeDate) => throw new NotSupportedException();

        private bool Upsert(MembershipEntry entry, TableVersion next, bool exists)
        {
            Reach();
            if (Version is not { } version || next.Version != version + 1 || Rows.ContainsKey(entry.SiloAddress) != exists)
            {
                return false;
            }

            Rows[entry.SiloAddress] = entry;
            Version = next.Version;
            Writes++;
            return true;
        }

        private void Reach()
        {
            if (Unreachable)
            {
                throw new TimeoutException("Redis does not answer.");
            }
        }
    }

    private sealed class Membership(long version, params (SiloAddress Silo, SiloStatus Status)[] members) : IClusterMembershipService
    {
        private ImmutableDictionary<SiloAddress, ClusterMember> _members = members.ToImmutableDictionary(m => m.Silo, m => new ClusterMember(m.Silo, m.Status, "silo"));

        public int Refreshes { get; private set; }

        public ClusterMembershipSnapshot CurrentSnapshot => new(_members, new MembershipVersion(version));

        public IAsyncEnumerable<ClusterMembershipSnapshot> MembershipUpdates => throw new NotSupportedException();

        public void Set(SiloAddress silo, SiloStatus status) => _members = _members.SetItem(silo, new ClusterMember(silo, status, "silo"));

        public ValueTask Refresh(MembershipVersion minimumVersion = default, CancellationToken cancellationToken = default)
        {
            Refreshes++;
            return ValueTask.CompletedTask;
        }

        public Task<bool> TryKill(SiloAddress siloAddress) => throw new NotSupportedException();
    }

    private sealed class LocalSilo(SiloAddress silo) : ILocalSiloDetails
    {
        public string Name => "silo";

        public string ClusterId => "cluster";

        public string DnsHostName => "host";

        public SiloAddress SiloAddress => silo;

        public SiloAddress GatewayAddress => silo;
    }
}
