using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Testing;

/// <summary>Signals picks made by the balancers of one container (its own meters only, so tests running at once do not see each other's).</summary>
public sealed class PickCounter : IDisposable
{
    private readonly MeterListener _listener = new();
    private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public PickCounter(IServiceProvider services)
    {
        var meters = services.GetRequiredService<IMeterFactory>();
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Name == "lodestar.client.picks" && ReferenceEquals(instrument.Meter.Scope, meters))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, _, _, _) => Volatile.Read(ref _next).TrySetResult());
        _listener.Start();
    }

    /// <summary>Completes at the next pick after this call.</summary>
    public Task Next()
    {
        var next = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _next, next);
        return next.Task;
    }

    public void Dispose() => _listener.Dispose();
}
