using Lodestar.AspNetCore.Registration.Internal;
using Lodestar.Internal;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Lodestar.AspNetCore.Hosting.Internal;

/// <summary>
/// Orders the serving side around the host's lifetime: registrations start once the server listens, and on shutdown
/// readiness turns 503, registrations are removed, and the server keeps serving for the drain delay before it is
/// allowed to stop.
/// </summary>
/// <remarks>
/// The host calls every <see cref="IHostedLifecycleService.StoppingAsync"/> before any
/// <see cref="IHostedService.StopAsync"/>, and the web server (Kestrel) stops in the web host's
/// <see cref="IHostedService.StopAsync"/>. Waiting out the drain delay in <see cref="StoppingAsync"/> therefore keeps
/// the listener open during the drain; Kestrel then stops accepting, sends HTTP/2 GOAWAY, and waits for in-flight
/// requests within what is left of <c>HostOptions.ShutdownTimeout</c>. On SIGTERM the console lifetime raises
/// <see cref="IHostApplicationLifetime.ApplicationStopping"/> first, so readiness flips at that moment too.
/// Likewise every <see cref="IHostedService.StartAsync"/> (Kestrel's binding included) completes before
/// <see cref="StartedAsync"/>, so the bound addresses are known when registration begins.
/// </remarks>
internal sealed partial class ServingLifecycleService : IHostedLifecycleService
{
    private readonly ServingState _state;
    private readonly RegistrationHost? _registrations;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly IOptionsMonitor<LodestarServingOptions> _options;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private CancellationTokenRegistration _onStopping;
    private Task? _deregistration;

    public ServingLifecycleService(ServingState state, IHostApplicationLifetime lifetime, IOptionsMonitor<LodestarServingOptions> options, TimeProvider timeProvider,
        ILogger<ServingLifecycleService> logger, RegistrationHost? registrations = null)
    {
        _state = state;
        _lifetime = lifetime;
        _options = options;
        _timeProvider = timeProvider;
        _logger = logger;
        _registrations = registrations;
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _onStopping = _lifetime.ApplicationStopping.Register(static self => ((ServingLifecycleService)self!).BeginDrain(), this);
        return Task.CompletedTask;
    }

    public Task StartedAsync(CancellationToken cancellationToken)
    {
        _registrations?.Start();
        return Task.CompletedTask;
    }

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        BeginDrain();
        var deregistration = Volatile.Read(ref _deregistration);
        if (deregistration is not null)
        {
            try
            {
                await deregistration.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                Log.ShutdownTimeoutDuringDrain(_logger);
                return;
            }
        }

        var remaining = _options.CurrentValue.DrainDelay - _state.DrainElapsed;
        Log.Draining(_logger, Math.Max(0, remaining.TotalMilliseconds));
        try
        {
            await _timeProvider.DelayAsync(remaining, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // HostOptions.ShutdownTimeout is shorter than the drain delay: stop now rather than overrun it.
            Log.ShutdownTimeoutDuringDrain(_logger);
            return;
        }

        Log.DrainDelayEnded(_logger);
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _onStopping.Dispose();
        return Task.CompletedTask;
    }

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private void BeginDrain()
    {
        if (!_state.BeginDrain())
        {
            return;
        }

        Log.DrainStarted(_logger, _options.CurrentValue.DrainDelay.TotalMilliseconds);
        if (_registrations is not null)
        {
            // Runs beside the drain delay: deregistration is what makes clients stop choosing this instance.
            using (ExecutionContext.SuppressFlow())
            {
                Volatile.Write(ref _deregistration, Task.Run(() => _registrations.DeregisterAllAsync(CancellationToken.None), CancellationToken.None));
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(10, LogLevel.Information, "Shutdown began: readiness now reports 503, registrations are being removed; serving on for the {DrainDelayMs:0} ms drain delay.", EventName = "DrainStarted")]
        public static partial void DrainStarted(ILogger logger, double drainDelayMs);

        [LoggerMessage(11, LogLevel.Debug, "Registrations removed; draining for {RemainingMs:0} ms more before the server stops accepting.", EventName = "Draining")]
        public static partial void Draining(ILogger logger, double remainingMs);

        [LoggerMessage(12, LogLevel.Information, "Drain delay over; the server stops accepting and finishes in-flight requests.", EventName = "DrainDelayEnded")]
        public static partial void DrainDelayEnded(ILogger logger);

        [LoggerMessage(13, LogLevel.Warning, "The host's shutdown timeout ended the drain early; raise HostOptions.ShutdownTimeout above the drain delay.", EventName = "ShutdownTimeoutDuringDrain")]
        public static partial void ShutdownTimeoutDuringDrain(ILogger logger);
    }
}
