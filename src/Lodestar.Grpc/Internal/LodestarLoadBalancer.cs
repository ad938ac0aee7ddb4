using Grpc.Core;
using Grpc.Net.Client.Balancer;
using Lodestar.Http;
using Lodestar.Internal;
using Lodestar.LoadBalancing;
using Microsoft.Extensions.Logging;

namespace Lodestar.Grpc.Internal;

/// <summary>
/// A subchannel per address (grpc-dotnet's <see cref="SubchannelsLoadBalancer"/>) and a picker that asks Lodestar's
/// balancer of the service which endpoint takes the call, then returns that endpoint's ready subchannel.
/// </summary>
/// <remarks>
/// Lodestar's balancer reads the same endpoint cache the <c>lodestar</c> resolver feeds the channel from, so both see the
/// same endpoints; a pick whose endpoint has no ready subchannel yet (still connecting) is retried on another.
/// The two hear of a new set one after the other, so the resolver puts the set's version on every address and each
/// picker knows the version its addresses came from: while Lodestar's balancer has not applied that version (or has
/// applied a newer one the channel has not), a call that finds no ready endpoint among those the layers allow waits
/// instead of failing, as grpc-go keeps the resolver state and the picker consistent. The balancer publishes a new
/// picker when Lodestar's balancer applies a set (<see cref="BalancedService.RegisterSetChanged"/>), and the channel
/// publishes one when its addresses change, so a waiting call is picked again as soon as the two agree.
/// </remarks>
internal sealed partial class LodestarLoadBalancer : RepublishingLoadBalancer
{
    private readonly IServiceBalancing _balancing;
    private readonly BalancerSettings _settings;
    private readonly LodestarClientOptions? _clientOptions;
    private readonly GrpcStatusOptions _grpc;
    private readonly ILogger _logger;
    private (string Service, string? Source)? _target;
    private BalancedService? _service;
    private Status? _failure;
    private bool _disposed;

    // The version of the endpoint set the channel's addresses came from; 0 when unknown (another resolver) or when the
    // resolver follows another source than the balancer, whose versions cannot be compared.
    private long _setVersion;
    private IDisposable? _setChanged;

    public LodestarLoadBalancer(IChannelControlHelper controller, Microsoft.Extensions.Logging.ILoggerFactory loggerFactory, IServiceBalancing balancing,
        BalancerSettings settings, LodestarClientOptions? clientOptions)
        : this(new SubchannelRecorder(controller), loggerFactory, balancing, settings, clientOptions)
    {
    }

    private LodestarLoadBalancer(SubchannelRecorder controller, Microsoft.Extensions.Logging.ILoggerFactory loggerFactory, IServiceBalancing balancing,
        BalancerSettings settings, LodestarClientOptions? clientOptions)
        : base(controller, loggerFactory)
    {
        _balancing = balancing;
        _settings = settings;
        _clientOptions = clientOptions;
        _grpc = clientOptions?.Grpc ?? new GrpcStatusOptions();
        _logger = loggerFactory.CreateLogger("Lodestar.Grpc.Balancer");
    }

    public override void UpdateChannelState(ChannelState state)
    {
        if (_settings.Error is { } error)
        {
            Controller.UpdateState(new BalancerState(ConnectivityState.TransientFailure, new FailurePicker(new Status(StatusCode.Unavailable, error))));
            return;
        }

        if (state.Status.StatusCode != StatusCode.OK || state.Addresses is not { Count: > 0 } addresses)
        {
            // A resolver error or no endpoints: the base reports it to the calls (and keeps ready subchannels on an error).
            base.UpdateChannelState(state);
            return;
        }

        // grpc-dotnet does not hand the resolver result's attributes to the balancer, so the resolver puts the service
        // and source on every address as well.
        var first = addresses[0].Attributes;
        var service = first.TryGetValue(LodestarBalancerAttributes.Service, out var named) ? named : _settings.Service;
        if (service is null)
        {
            Controller.UpdateState(new BalancerState(ConnectivityState.TransientFailure, new FailurePicker(new Status(StatusCode.Unavailable,
                $"The gRPC balancer '{_settings.Name}' needs to know the service: use the lodestar resolver (lodestar:///<service>) or set '{LodestarGrpcPolicies.ServiceKey}' in its config."))));
            return;
        }

        var hasSource = first.TryGetValue(LodestarBalancerAttributes.Source, out var sourceName);
        var source = hasSource ? sourceName : _clientOptions?.Source;
        var version = (hasSource || _clientOptions?.Source is null) && first.TryGetValue(LodestarResolver.SetVersion, out var setVersion) ? setVersion : 0;
        var target = (service, source);
        bool start;
        IDisposable? stale = null;
        long generation;
        bool versionChanged;
        lock (Gate)
        {
            start = _target != target;
            if (start)
            {
                _target = target;
                _service = null;
                _failure = null;
                stale = _setChanged;
                _setChanged = null;
            }

            versionChanged = _setVersion != version;
            if (versionChanged)
            {
                _setVersion = version;
                Changed_NeedsLock();
            }

            generation = Generation_NeedsLock();
        }

        stale?.Dispose();
        if (start)
        {
            Connect(target);
        }

        base.UpdateChannelState(state);

        // The base publishes a picker only when the addresses changed; a set that changed only the endpoints' metadata
        // (priority, weight) still needs a picker that knows the new version. Under the channel's lock: none can race.
        lock (Gate)
        {
            if (!versionChanged || Generation_NeedsLock() != generation)
            {
                return;
            }
        }

        Publish();
    }

    protected override SubchannelPicker BuildPicker(IReadOnlyList<Subchannel> ready)
    {
        BalancedService? service;
        Status? failure;
        long version;
        lock (Gate)
        {
            service = _service;
            failure = _failure;
            version = _setVersion;
        }

        return NewPicker(service, failure, ready, version);
    }

    protected override void Dispose(bool disposing)
    {
        IDisposable? setChanged;
        lock (Gate)
        {
            _disposed = true;
            setChanged = _setChanged;
            _setChanged = null;
        }

        setChanged?.Dispose();
        base.Dispose(disposing);
    }

    private SubchannelPicker NewPicker(BalancedService? service, Status? failure, IReadOnlyList<Subchannel> ready, long setVersion)
        => failure is { } status ? new FailurePicker(status)
            : service is null ? QueuePicker.Instance
            : new LodestarPicker(service, ready, _grpc, _settings.HashHeader, Subchannels.Connecting(), setVersion);

    /// <summary>
    /// A picker over the ready subchannels and the latest set version for <see cref="RepublishingLoadBalancer.Publish"/>,
    /// once Lodestar's balancer exists; none before, or after a failure (the base's picker, or the failure's, stays).
    /// </summary>
    protected override SubchannelPicker? BuildToPublish_NeedsLock()
        => _disposed || _failure is not null || _service is null ? null : NewPicker(_service, null, Ready, _setVersion);

    /// <summary>Lodestar's balancer applied a newer set: calls waiting for it are picked again with a new picker.</summary>
    private void OnSetChanged((string Service, string? Source) target)
    {
        lock (Gate)
        {
            if (_disposed || _target != target || _setVersion == 0)
            {
                return;
            }
        }

        // Not on this thread: a set can be applied while another channel of the same service holds its own lock (its
        // balancer looking the service up), and publishing here would take this channel's lock inside that one.
        ThreadPool.UnsafeQueueUserWorkItem(static self => self.Publish(), this, preferLocal: false);
    }

    private void Connect((string Service, string? Source) target)
    {
        ValueTask<BalancedService> pending;
        try
        {
            pending = _balancing.GetServiceAsync(target.Service, target.Source, _settings.Policy, _clientOptions, _settings.Client);
        }
        catch (Exception ex)
        {
            OnConnected(target, null, ex);
            return;
        }

        if (pending.IsCompletedSuccessfully)
        {
            // The usual case: the resolver already delivered a set, so the stage and balancer exist or are made at once.
            OnConnected(target, pending.Result, null);
            return;
        }

        _ = CompleteAsync(this, target, pending);

        static async Task CompleteAsync(LodestarLoadBalancer self, (string Service, string? Source) target, ValueTask<BalancedService> pending)
        {
            try
            {
                self.OnConnected(target, await pending.ConfigureAwait(false), null);
            }
            catch (Exception ex)
            {
                self.OnConnected(target, null, ex);
            }
        }
    }

    private void OnConnected((string Service, string? Source) target, BalancedService? service, Exception? error)
    {
        Status? failure = null;
        lock (Gate)
        {
            if (_disposed || _target != target)
            {
                return;
            }

            _service = service;
            if (error is not null)
            {
                var message = Lodestar.Discovery.SecretRedactor.Default.Redact(error.Message);
                failure = new Status(StatusCode.Unavailable, $"The gRPC balancer '{_settings.Name}' cannot balance service '{target.Service}': {message}");
                _failure = failure;
                Log.BalancerFailed(_logger, _settings.Name, target.Service, message ?? string.Empty);
            }
        }

        if (failure is not null)
        {
            Controller.UpdateState(new BalancerState(ConnectivityState.TransientFailure, new FailurePicker(failure.Value)));
            return;
        }

        // Registered outside the lock: the callback takes it. A set applied between the lookup and here is covered by
        // the picker published below, which reads the balancer's version when it picks.
        var registration = service!.RegisterSetChanged(() => OnSetChanged(target));
        lock (Gate)
        {
            if (!_disposed && _target == target && _setChanged is null)
            {
                _setChanged = registration;
                registration = null;
            }
        }

        registration?.Dispose();

        // A picker built before the balancer existed queues calls: publish one that picks, once subchannels are ready.
        Publish();
    }

    private sealed class FailurePicker(Status status) : SubchannelPicker
    {
        public override PickResult Pick(global::Grpc.Net.Client.Balancer.PickContext context) => PickResult.ForFailure(status);
    }

    private sealed class QueuePicker : SubchannelPicker
    {
        public static readonly QueuePicker Instance = new();

        public override PickResult Pick(global::Grpc.Net.Client.Balancer.PickContext context) => PickResult.ForQueue();
    }

    private static partial class Log
    {
        [LoggerMessage(10, LogLevel.Warning, "The gRPC balancer {Balancer} cannot balance service {Service}: {Error}", EventName = "BalancerFailed")]
        public static partial void BalancerFailed(ILogger logger, string balancer, string service, string error);
    }
}
