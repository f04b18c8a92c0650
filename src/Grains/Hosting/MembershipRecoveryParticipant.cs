namespace OrleansLimiter.Grains.Hosting;

/// <summary>Runs <see cref="MembershipRecovery"/> while the silo is active: from its start until it begins to stop.</summary>
internal sealed class MembershipRecoveryParticipant(MembershipRecovery recovery) : ILifecycleParticipant<ISiloLifecycle>, IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private Task _loop = Task.CompletedTask;

    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(MembershipRecovery), ServiceLifecycleStage.Active, StartAsync, StopAsync);

    public void Dispose() => _stop.Dispose();

    private Task StartAsync(CancellationToken cancellationToken)
    {
        _loop = Task.Run(() => recovery.RunAsync(_stop.Token), CancellationToken.None);
        return Task.CompletedTask;
    }

    // Stops before the silo leaves the table, so that a stopping silo never puts its row back.
    private async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.WaitAsync(cancellationToken).ConfigureAwait(false);
    }
}
