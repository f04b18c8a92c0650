namespace OrleansLimiter.Grains.Commands;

/// <summary>Something a provider grain asks of its store, queued in arrival order; its outcome goes to its caller.</summary>
public abstract class ProviderCommand
{
    /// <summary>Delivers a failure to whoever waits on the command.</summary>
    public abstract void Fail(Exception exception);
}

/// <summary>A command whose caller waits for a <typeparamref name="T"/>.</summary>
public abstract class ProviderCommand<T> : ProviderCommand
{
    /// <summary>Completed with the outcome, or the failure.</summary>
    public TaskCompletionSource<T> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <inheritdoc />
    public override void Fail(Exception exception) => Completion.TrySetException(exception);
}
