namespace OrleansLimiter.Grains.Commands;

/// <summary>
/// One ordered queue of store commands: executes one at a time, in arrival order, so that a reset
/// is ordered against the consumes around it and replies are applied in the order the store made
/// them. Cost batches for the same limits queued back to back leave together (up to <see cref="MaxCostsPerCall"/>
/// costs; a single batch is never split), and so do waiters' grants (collects). Nothing runs unobserved: any failure of an execution is delivered to
/// exactly the commands it carried. Not thread-safe: used on one grain activation's scheduler.
/// </summary>
/// <param name="execute">Executes one command, or a group of cost batches or collects; completes the commands.</param>
public sealed class CommandQueue(Func<IReadOnlyList<ProviderCommand>, Task> execute)
{
    /// <summary>Upper bound on costs decided by one store call, to keep each script short.</summary>
    public const int MaxCostsPerCall = 4096;

    private readonly Queue<ProviderCommand> _commands = new();
    private bool _running;

    /// <summary>Whether a command is executing or waiting.</summary>
    public bool IsBusy => _running;

    /// <summary>The runner's task, completed when the queue is empty.</summary>
    public Task Idle { get; private set; } = Task.CompletedTask;

    /// <summary>Queues <paramref name="command"/>; the returned task is its outcome.</summary>
    public Task<T> Enqueue<T>(ProviderCommand<T> command)
    {
        ArgumentNullException.ThrowIfNull(command);
        _commands.Enqueue(command);
        if (!_running)
        {
            _running = true;
            Idle = RunAsync();
        }

        return command.Completion.Task;
    }

    private async Task RunAsync()
    {
        try
        {
            while (_commands.Count > 0)
            {
                var taken = Take();
                try
                {
                    await execute(taken);
                }
                catch (Exception ex)
                {
                    foreach (var command in taken)
                    {
                        command.Fail(ex);
                    }
                }
            }
        }
        finally
        {
            _running = false;
        }
    }

    private List<ProviderCommand> Take()
    {
        var first = _commands.Dequeue();
        var taken = new List<ProviderCommand> { first };
        if (first is CostCommand cost)
        {
            // Cost batches for the same limits that arrive while a store call is out leave together.
            var requests = cost.Costs.Length;
            while (_commands.TryPeek(out var next) && next is CostCommand more && more.Limits.SameAs(cost.Limits) && requests + more.Costs.Length <= MaxCostsPerCall)
            {
                _commands.Dequeue();
                taken.Add(more);
                requests += more.Costs.Length;
            }
        }
        else if (first is GrantCostWaitersCommand grant)
        {
            // So do waiters' collects.
            var waiters = grant.Waiters.Length;
            while (_commands.TryPeek(out var next) && next is GrantCostWaitersCommand more && more.Limits.SameAs(grant.Limits) && waiters + more.Waiters.Length <= MaxCostsPerCall)
            {
                _commands.Dequeue();
                taken.Add(more);
                waiters += more.Waiters.Length;
            }
        }

        return taken;
    }
}
