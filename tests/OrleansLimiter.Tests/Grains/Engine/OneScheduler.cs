namespace OrleansLimiter.Tests.Grains.Engine;

/// <summary>
/// Runs a test body as a grain activation runs its calls: one piece at a time, every continuation
/// back on the same scheduler, so the engine (not thread-safe) is used as its grain uses it.
/// </summary>
internal static class OneScheduler
{
    public static Task Run(Func<Task> body)
    {
        var pair = new ConcurrentExclusiveSchedulerPair();
        return Task.Factory.StartNew(body, CancellationToken.None, TaskCreationOptions.None, pair.ExclusiveScheduler).Unwrap();
    }

    /// <summary>Lets every continuation queued on the scheduler run (what a fake clock's advance released).</summary>
    public static async Task Settle()
    {
        for (var i = 0; i < 50; i++)
        {
            await Task.Yield();
        }
    }
}
