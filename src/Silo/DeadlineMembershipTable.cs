namespace OrleansLimiter.Silo;

/// <summary>
/// The silo's membership table (Redis) with every call bounded by the stop's membership deadline: a
/// stopped Redis makes each call wait out StackExchange.Redis' time-out and a hung one may never answer,
/// while the stop has <see cref="ShutdownBudget.Membership"/> for all of them. Before the stop the
/// deadline never passes and calls go through unchanged.
/// </summary>
internal sealed class DeadlineMembershipTable(IMembershipTable inner, ShutdownDeadline deadline) : IMembershipTable
{
    /// <summary>Wraps the last <see cref="IMembershipTable"/> registered in <paramref name="services"/>, in its place.</summary>
    public static void Decorate(IServiceCollection services)
    {
        for (var i = services.Count - 1; i >= 0; i--)
        {
            var registered = services[i];
            if (registered.ServiceType != typeof(IMembershipTable) || registered.IsKeyedService)
            {
                continue;
            }

            services[i] = ServiceDescriptor.Singleton<IMembershipTable>(sp =>
                new DeadlineMembershipTable(Create(sp, registered), sp.GetRequiredService<ShutdownDeadline>()));
            return;
        }

        throw new InvalidOperationException("No membership table is registered: call AddShutdownDeadline after UseRedisClustering.");
    }

    private static IMembershipTable Create(IServiceProvider services, ServiceDescriptor registered) =>
        (IMembershipTable)(registered.ImplementationInstance
            ?? registered.ImplementationFactory?.Invoke(services)
            ?? ActivatorUtilities.CreateInstance(services, registered.ImplementationType!));

    public Task InitializeMembershipTable(bool tryInitTableVersion) => InitializeMembershipTableAsync(tryInitTableVersion);

    public Task InitializeMembershipTableAsync(bool tryInitTableVersion, CancellationToken cancellationToken = default) =>
        Bounded(ct => inner.InitializeMembershipTableAsync(tryInitTableVersion, ct), cancellationToken);

    public Task DeleteMembershipTableEntries(string clusterId) => DeleteMembershipTableEntriesAsync(clusterId);

    public Task DeleteMembershipTableEntriesAsync(string clusterId, CancellationToken cancellationToken = default) =>
        Bounded(ct => inner.DeleteMembershipTableEntriesAsync(clusterId, ct), cancellationToken);

    public Task CleanupDefunctSiloEntries(DateTimeOffset beforeDate) => CleanupDefunctSiloEntriesAsync(beforeDate);

    public Task CleanupDefunctSiloEntriesAsync(DateTimeOffset beforeDate, CancellationToken cancellationToken = default) =>
        Bounded(ct => inner.CleanupDefunctSiloEntriesAsync(beforeDate, ct), cancellationToken);

    public Task<MembershipTableData> ReadRow(SiloAddress key) => ReadRowAsync(key);

    public Task<MembershipTableData> ReadRowAsync(SiloAddress key, CancellationToken cancellationToken = default) =>
        Bounded(ct => inner.ReadRowAsync(key, ct), cancellationToken);

    public Task<MembershipTableData> ReadAll() => ReadAllAsync();

    public Task<MembershipTableData> ReadAllAsync(CancellationToken cancellationToken = default) =>
        Bounded(inner.ReadAllAsync, cancellationToken);

    public Task<bool> InsertRow(MembershipEntry entry, TableVersion tableVersion) => InsertRowAsync(entry, tableVersion);

    public Task<bool> InsertRowAsync(MembershipEntry entry, TableVersion tableVersion, CancellationToken cancellationToken = default) =>
        Bounded(ct => inner.InsertRowAsync(entry, tableVersion, ct), cancellationToken);

    public Task<bool> UpdateRow(MembershipEntry entry, string etag, TableVersion tableVersion) => UpdateRowAsync(entry, etag, tableVersion);

    public Task<bool> UpdateRowAsync(MembershipEntry entry, string etag, TableVersion tableVersion, CancellationToken cancellationToken = default) =>
        Bounded(ct => inner.UpdateRowAsync(entry, etag, tableVersion, ct), cancellationToken);

    public Task UpdateIAmAlive(MembershipEntry entry) => UpdateIAmAliveAsync(entry);

    public Task UpdateIAmAliveAsync(MembershipEntry entry, CancellationToken cancellationToken = default) =>
        Bounded(ct => inner.UpdateIAmAliveAsync(entry, ct), cancellationToken);

    private async Task Bounded(Func<CancellationToken, Task> call, CancellationToken cancellationToken) =>
        await Bounded(async ct =>
        {
            await call(ct).ConfigureAwait(false);
            return true;
        }, cancellationToken).ConfigureAwait(false);

    private async Task<T> Bounded<T>(Func<CancellationToken, Task<T>> call, CancellationToken cancellationToken)
    {
        var membershipDeadline = deadline.MembershipDeadline;
        if (membershipDeadline.IsCancellationRequested)
        {
            deadline.MembershipCut();
            throw Late();
        }

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, membershipDeadline);
        try
        {
            // WaitAsync as well as the token: a call that does not honour its token still ends on time.
            return await call(linked.Token).WaitAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException ex) when (membershipDeadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            deadline.MembershipCut();
            throw Late(ex);
        }
    }

    private TimeoutException Late(Exception? inner = null) =>
        new($"The silo is stopping and its membership updates had {deadline.MembershipBudget.TotalSeconds} s ({ShutdownBudget.Setting} / 4); Redis did not answer in time.", inner);
}
