namespace Lodestar.AspNetCore.Tests.Diagnostics;

/// <summary>
/// The test classes that listen to Lodestar's spans process-wide. A listener that samples every Lodestar span also
/// samples those of a test running beside it, and one of these classes asserts that a span goes unsampled (the
/// parent-based sampler's pitfall): the classes run one after another.
/// </summary>
[CollectionDefinition(Name)]
public sealed class ActivityListenerCollection
{
    public const string Name = "Process-wide activity listeners";
}
