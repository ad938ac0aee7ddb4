using System.Collections.Concurrent;
using System.Diagnostics;
using Lodestar.Diagnostics;

namespace Lodestar.Testing;

/// <summary>
/// Records every span Lodestar ends, and those of a caller source of the test's own (a unique name, so tests running at
/// once do not see each other's callers), all sampled in full.
/// </summary>
public sealed class SpanRecorder : IDisposable
{
    private readonly ActivityListener _listener;

    public SpanRecorder(string callerName)
    {
        Caller = new ActivitySource(callerName + "." + Guid.NewGuid().ToString("N"));
        var callerSource = Caller.Name;
        _listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == LodestarDiagnostics.Name || s.Name == callerSource,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = Stopped.Enqueue,
        };
        ActivitySource.AddActivityListener(_listener);
    }

    /// <summary>Gets the test's caller source: start the span that a request is sent under from it.</summary>
    public ActivitySource Caller { get; }

    /// <summary>Gets the spans ended so far, Lodestar's and the caller's.</summary>
    public ConcurrentQueue<Activity> Stopped { get; } = new();

    /// <summary>Returns Lodestar's ended spans whose parent is <paramref name="parent"/>.</summary>
    public List<Activity> ChildrenOf(Activity parent)
        => Stopped.Where(a => a.TraceId == parent.TraceId && a.ParentSpanId == parent.SpanId && a.Source.Name == LodestarDiagnostics.Name).ToList();

    /// <summary>Returns Lodestar's ended spans in <paramref name="root"/>'s trace, whatever their parent.</summary>
    public List<Activity> InTraceOf(Activity root)
        => Stopped.Where(a => a.TraceId == root.TraceId && a.Source.Name == LodestarDiagnostics.Name).ToList();

    public void Dispose()
    {
        _listener.Dispose();
        Caller.Dispose();
    }
}
