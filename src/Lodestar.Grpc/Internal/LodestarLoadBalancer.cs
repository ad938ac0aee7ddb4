using Grpc.Core;
using Grpc.Net.Client.Balancer;
using Lodestar.Http;
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
/// </remarks>
internal sealed partial class LodestarLoadBalancer : SubchannelsLoadBalancer
{
    private readonly IServiceBalancing _balancing;
    private readonly BalancerSettings _settings;
    private readonly LodestarClientOptions? _clientOptions;
    private readonly GrpcStatusOptions _grpc;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private (string Service, string? Source)? _target;
    private BalancedService? _service;
    private Status? _failure;
    private IReadOnlyList<Subchannel> _ready = [];
    private bool _disposed;

    private readonly SubchannelRecorder _subchannels;

    public LodestarLoadBalancer(IChannelControlHelper controller, Microsoft.Extensions.Logging.ILoggerFactory loggerFactory, IServiceBalancing balancing,
        BalancerSettings settings, LodestarClientOptions? clientOptions)
        : this(new SubchannelRecorder(controller), loggerFactory, balancing, settings, clientOptions)
    {
    }

    private LodestarLoadBalancer(SubchannelRecorder controller, Microsoft.Extensions.Logging.ILoggerFactory loggerFactory, IServiceBalancing balancing,
        BalancerSettings settings, LodestarClientOptions? clientOptions)
        : base(controller, loggerFactory)
    {
        _subchannels = controller;
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

        var source = first.TryGetValue(LodestarBalancerAttributes.Source, out var sourceName) ? sourceName : _clientOptions?.Source;
        var target = (service, source);
        bool start;
        lock (_gate)
        {
            start = _target != target;
            if (start)
            {
                _target = target;
                _service = null;
                _failure = null;
            }
        }

        if (start)
        {
            Connect(target);
        }

        base.UpdateChannelState(state);
    }

    protected override SubchannelPicker CreatePicker(IReadOnlyList<Subchannel> readySubchannels)
    {
        BalancedService? service;
        Status? failure;
        lock (_gate)
        {
            _ready = readySubchannels;
            service = _service;
            failure = _failure;
        }

        return BuildPicker(service, failure, readySubchannels);
    }

    protected override void Dispose(bool disposing)
    {
        lock (_gate)
        {
            _disposed = true;
        }

        base.Dispose(disposing);
    }

    private SubchannelPicker BuildPicker(BalancedService? service, Status? failure, IReadOnlyList<Subchannel> ready)
        => failure is { } status ? new FailurePicker(status)
            : service is null ? QueuePicker.Instance
            : new LodestarPicker(service, ready, _grpc, _settings.HashHeader, _subchannels.Connecting());

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
        IReadOnlyList<Subchannel> ready;
        Status? failure = null;
        lock (_gate)
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

            ready = _ready;
        }

        // A picker built before the balancer existed queues calls: publish one that picks, once subchannels are ready.
        if (failure is not null)
        {
            Controller.UpdateState(new BalancerState(ConnectivityState.TransientFailure, new FailurePicker(failure.Value)));
        }
        else if (ready.Count > 0)
        {
            Controller.UpdateState(new BalancerState(ConnectivityState.Ready, BuildPicker(service, null, ready)));
        }
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
