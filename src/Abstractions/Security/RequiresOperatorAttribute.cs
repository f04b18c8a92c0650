namespace OrleansLimiter.Security;

/// <summary>
/// Marks a grain method that changes what the cluster decides (a reset, a limit change): the silo
/// runs it only for a caller that presents the operator key (<see cref="OperatorKey"/>), so a worker
/// that can reach a gateway still cannot empty a window or throttle everyone.
/// </summary>
[AttributeUsage(AttributeTargets.Method, Inherited = true)]
public sealed class RequiresOperatorAttribute : Attribute;
