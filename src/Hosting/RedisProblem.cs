namespace OrleansLimiter.Hosting;

/// <summary>Why Redis cannot be used, and whether waiting for it may help.</summary>
/// <param name="Message">One line, without secrets.</param>
/// <param name="MayResolveItself">True when Redis was not reached (not running yet, name not resolvable yet, timed out).</param>
public sealed record RedisProblem(string Message, bool MayResolveItself);
