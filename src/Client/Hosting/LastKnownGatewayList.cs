using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.Messaging;

namespace OrleansLimiter.Client.Hosting;

/// <summary>
/// Answers the client's gateway list with the last non-empty list when the membership table has
/// none to give (it is gone: Redis lost its data, a FLUSHALL) or cannot be read.
/// </summary>
/// <remarks>
/// Why: Orleans' client treats the list it reads as the truth and closes its connections to every
/// gateway missing from it. A table that Redis lost therefore disconnects every client from silos
/// that are running fine, drops the answers in flight (their points were spent in Redis, never
/// delivered), and leaves no gateway to send to until a later refresh finds the rows the silos write
/// again (seconds). Keeping the last list keeps those connections: a silo that really died is still
/// dropped by the client itself, on the connection's failure, and the next non-empty list replaces the
/// kept one at once.
/// </remarks>
internal sealed partial class LastKnownGatewayList(IGatewayListProvider inner, ILogger<LastKnownGatewayList> logger) : IGatewayListProvider
{
    private IList<Uri> _last = [];
    private bool _keeping;

    public TimeSpan MaxStaleness => inner.MaxStaleness;

    [Obsolete("Orleans considers every provider updatable.")]
    public bool IsUpdatable => true;

    public Task InitializeGatewayListProvider() => inner.InitializeGatewayListProvider();

    public async Task<IList<Uri>> GetGateways()
    {
        IList<Uri> listed;
        try
        {
            listed = await inner.GetGateways().ConfigureAwait(false);
        }
        catch (Exception ex) when (Volatile.Read(ref _last).Count > 0)
        {
            return Keep($"the membership table could not be read ({ex.GetType().Name})");
        }

        if (listed.Count == 0 && Volatile.Read(ref _last).Count > 0)
        {
            return Keep("the membership table lists no gateway");
        }

        Volatile.Write(ref _last, listed.ToArray());
        if (_keeping && listed.Count > 0)
        {
            _keeping = false;
            LogListedAgain(logger, listed.Count);
        }

        return listed;
    }

    private IList<Uri> Keep(string reason)
    {
        var last = Volatile.Read(ref _last);
        if (!_keeping)
        {
            _keeping = true;
            LogKeeping(logger, reason, last.Count);
        }

        return last;
    }

    /// <summary>
    /// Wraps the <see cref="IGatewayListProvider"/> registered so far (a clustering provider's) in a
    /// <see cref="LastKnownGatewayList"/>; call after the clustering provider is configured.
    /// </summary>
    public static void Decorate(IServiceCollection services)
    {
        var registered = services.LastOrDefault(d => d.ServiceType == typeof(IGatewayListProvider))
            ?? throw new InvalidOperationException("No gateway list provider is registered: configure clustering before keeping its last list.");
        services.Remove(registered);
        services.AddSingleton<IGatewayListProvider>(sp => new LastKnownGatewayList(
            (IGatewayListProvider)(registered.ImplementationInstance
                ?? registered.ImplementationFactory?.Invoke(sp)
                ?? ActivatorUtilities.CreateInstance(sp, registered.ImplementationType!)),
            sp.GetRequiredService<ILogger<LastKnownGatewayList>>()));
    }

    [LoggerMessage(EventId = 310, Level = LogLevel.Warning, Message = "Keeping the last {Count} known gateways: {Reason}; the connections to them stay open")]
    private static partial void LogKeeping(ILogger logger, string reason, int count);

    [LoggerMessage(EventId = 311, Level = LogLevel.Information, Message = "The membership table lists {Count} gateways again")]
    private static partial void LogListedAgain(ILogger logger, int count);
}
