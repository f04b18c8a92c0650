namespace OrleansLimiter.Tests.Infrastructure;

[CollectionDefinition(Name)]
public sealed class ProcessClusterCollection : ICollectionFixture<ProcessClusterFixture>
{
    public const string Name = "process cluster";
}
