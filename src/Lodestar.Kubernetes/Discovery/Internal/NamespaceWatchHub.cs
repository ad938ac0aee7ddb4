using System.Globalization;
using System.Threading.Channels;
using Lodestar.Discovery;
using Lodestar.Endpoints;
using Lodestar.Kubernetes.Api.Internal;
using Microsoft.Extensions.Logging;

namespace Lodestar.Kubernetes.Discovery.Internal;

/// <summary>
/// The shared LIST+WATCH of the EndpointSlices of one namespace on one API server, feeding every service of that
/// namespace that is followed: client-go's shared informer, one per (cluster, namespace).
/// </summary>
/// <remarks>
/// <para>
/// The hub runs one <see cref="EndpointSliceSource"/> in shared mode, on the same list/watch loop as any source (its
/// backoff, stall detection, 410 handling), and routes what it reads to its members by the
/// <c>kubernetes.io/service-name</c> label: a snapshot of the service after every list, each change as it arrives, each
/// bookmark to everyone. Every member keeps its own loop, which replays these messages: its endpoint merging, its
/// problems, its backoff after a failure and its reconnect count stay per service.
/// </para>
/// <para>
/// The state (the EndpointSlices of the services the last list covered, by service and name) lets a service that
/// joins, or a member that lists again after a failure, be served without a request when the selector already covers
/// it. A service the selector does not cover makes the hub list again with the new selector; a leaving service costs
/// nothing until the next list leaves it out.
/// </para>
/// <para>
/// Concurrency: one lock guards the members, the state and the order of messages; a member's messages are written
/// under it, so a member never sees a change before the snapshot it applies to. Cancellation happens outside it.
/// </para>
/// </remarks>
internal sealed class NamespaceWatchHub
{
    private readonly object _gate = new();
    private readonly NamespaceWatchHubs _owner;
    private readonly NamespaceWatchHubs.HubKey _key;
    private readonly Dictionary<string, List<NamespaceWatchMember>> _members = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Dictionary<string, EndpointSlice>> _state = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private readonly EndpointSliceSource _source;
    private readonly int _selectorLimit;
    private Selection? _selection;
    private bool _listed;
    private string? _resourceVersion;
    private int _version;
    private int _listedVersion;
    private CancellationTokenSource _refresh = new();

    public NamespaceWatchHub(NamespaceWatchHubs owner, NamespaceWatchHubs.HubKey key, KubernetesSourceOptions options, KubernetesClientFactory clients,
        TimeProvider timeProvider, ILogger logger, Func<double>? random)
    {
        _owner = owner;
        _key = key;
        _selectorLimit = options.SharedWatchSelectorLimit;
        _source = new EndpointSliceSource(this, key.Namespace, options, clients, timeProvider, logger, random);
    }

    /// <summary>Gets the task of the shared loop, once started.</summary>
    public Task Run { get; private set; } = Task.CompletedTask;

    /// <summary>Gets a token cancelled when a service joins that the listed selector does not cover.</summary>
    public CancellationToken RefreshToken
    {
        get
        {
            lock (_gate)
            {
                return _refresh.Token;
            }
        }
    }

    /// <summary>Gets whether a service joined since the last list began that the list does not cover.</summary>
    public bool NeedsRefresh
    {
        get
        {
            lock (_gate)
            {
                return _version != _listedVersion;
            }
        }
    }

    /// <summary>Gets the number of services with members (for tests and figures).</summary>
    public int ServiceCount
    {
        get
        {
            lock (_gate)
            {
                return _members.Count;
            }
        }
    }

    /// <summary>Starts the shared loop.</summary>
    public void Start() => Run = Task.Run(() => _source.RunAsync(new HubObserver(this), _stop.Token));

    /// <summary>Stops the shared loop; it ends on its own.</summary>
    public void Stop()
    {
        _stop.Cancel();
        _ = Run.ContinueWith(static (_, state) => ((CancellationTokenSource)state!).Dispose(), _stop, CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>
    /// Adds a member; when the selector listed does not cover its service, returns the token source to cancel (outside
    /// every lock: the shared loop's continuations may run inline) so that the hub lists again.
    /// </summary>
    public CancellationTokenSource? Add_NeedsOwnerLock(NamespaceWatchMember member)
    {
        CancellationTokenSource? refresh = null;
        lock (_gate)
        {
            if (!_members.TryGetValue(member.Service, out var list))
            {
                _members[member.Service] = list = [];
            }

            list.Add(member);
            if (_selection is { } selection && !selection.Covers(member.Service))
            {
                _version++;
                refresh = _refresh;
            }
        }

        return refresh;
    }

    /// <summary>Removes a member; returns whether none is left.</summary>
    public bool Remove_NeedsOwnerLock(NamespaceWatchMember member)
    {
        lock (_gate)
        {
            if (_members.TryGetValue(member.Service, out var list) && list.Remove(member) && list.Count == 0)
            {
                _members.Remove(member.Service);
            }

            return _members.Count == 0;
        }
    }

    /// <summary>Leaves the hub (called by the member).</summary>
    public void Leave(NamespaceWatchMember member) => _owner.Leave(_key, this, member);

    /// <summary>Sends <paramref name="member"/> a snapshot now when the state covers its service; otherwise the next list will.</summary>
    public void RequestSnapshot(NamespaceWatchMember member)
    {
        lock (_gate)
        {
            if (_listed && _selection!.Covers(member.Service))
            {
                member.Send(HubMessage.Snapshot(SlicesOf_NeedsLock(member.Service), _resourceVersion!));
            }
        }
    }

    /// <summary>Chooses what the next list selects: the services with members, or the whole namespace above the limit.</summary>
    public Selection BeginList()
    {
        Selection selection;
        lock (_gate)
        {
            var services = _members.Keys.Order(StringComparer.Ordinal).ToArray();
            selection = new Selection(services.Length > _selectorLimit ? null : services);
            _selection = selection;
            _listed = false;
            _listedVersion = _version;
            // The previous source is not disposed: a joining member may be cancelling it right now. It holds no timer.
            _refresh = new CancellationTokenSource();
        }

        return selection;
    }

    /// <summary>Replaces the state with a complete list and sends each covered member its service's snapshot.</summary>
    public void Listed(Selection selection, List<EndpointSlice> slices, string resourceVersion)
    {
        lock (_gate)
        {
            _state.Clear();
            List<string>? unrouted = null;
            foreach (var slice in slices)
            {
                if (ServiceOf(slice, selection) is not { } service)
                {
                    (unrouted ??= []).Add(slice.Metadata?.Name ?? "");
                }
                else if (selection.Covers(service))
                {
                    Store_NeedsLock(service, slice);
                }
            }

            if (unrouted is not null)
            {
                Broadcast_NeedsLock(HubMessage.Problem(Unrouted(unrouted.Count, unrouted[0], "in the list")));
            }

            _resourceVersion = resourceVersion;
            _listed = true;
            foreach (var (service, members) in _members)
            {
                if (!selection.Covers(service))
                {
                    continue;
                }

                var snapshot = HubMessage.Snapshot(SlicesOf_NeedsLock(service), resourceVersion);
                foreach (var member in members)
                {
                    member.Send(snapshot);
                }
            }
        }
    }

    /// <summary>Applies one ADDED, MODIFIED or DELETED event and sends it to the members of its service.</summary>
    public void Changed(string type, EndpointSlice item, string? resourceVersion)
    {
        lock (_gate)
        {
            if (_selection is not { } selection)
            {
                return;
            }

            if (ServiceOf(item, selection) is not { } service)
            {
                Broadcast_NeedsLock(HubMessage.Problem(Unrouted(1, item.Metadata?.Name ?? "", "in a " + type + " watch event")));
                return;
            }

            if (!selection.Covers(service))
            {
                return;
            }

            var name = item.Metadata?.Name;
            if (!string.IsNullOrEmpty(name))
            {
                if (type == "DELETED")
                {
                    if (_state.TryGetValue(service, out var slices))
                    {
                        slices.Remove(name);
                    }
                }
                else if (EndpointSliceMerger.Validate(item) is null)
                {
                    Store_NeedsLock(service, item);
                }
            }

            if (!string.IsNullOrEmpty(resourceVersion))
            {
                _resourceVersion = resourceVersion;
            }

            if (_members.TryGetValue(service, out var members))
            {
                var message = HubMessage.Change(type, item);
                foreach (var member in members)
                {
                    member.Send(message);
                }
            }
        }
    }

    /// <summary>Moves every member's resume point (a bookmark): the shared stream is alive.</summary>
    public void Progress(string resourceVersion)
    {
        lock (_gate)
        {
            _resourceVersion = resourceVersion;
            Broadcast_NeedsLock(HubMessage.Progress(resourceVersion));
        }
    }

    /// <summary>Reports a problem that did not end the shared watch to every member.</summary>
    /// <param name="text">What went wrong, redacted; each member prefixes its service and the API server.</param>
    public void Problem(string text)
    {
        lock (_gate)
        {
            Broadcast_NeedsLock(HubMessage.Problem(text));
        }
    }

    /// <summary>Tells every member how the shared watch ended: it resumes (a reconnect) or lists again (410).</summary>
    public void Ended(WatchOutcome outcome)
    {
        if (outcome is not (WatchOutcome.Reconnect or WatchOutcome.Relist))
        {
            return;
        }

        lock (_gate)
        {
            if (outcome == WatchOutcome.Relist)
            {
                _listed = false;
            }

            Broadcast_NeedsLock(outcome == WatchOutcome.Relist ? HubMessage.Relist : HubMessage.Reconnect);
        }
    }

    private void Failed(Exception error)
    {
        lock (_gate)
        {
            Broadcast_NeedsLock(HubMessage.Failure(error));
        }
    }

    private void Broadcast_NeedsLock(HubMessage message)
    {
        foreach (var members in _members.Values)
        {
            foreach (var member in members)
            {
                member.Send(message);
            }
        }
    }

    private void Store_NeedsLock(string service, EndpointSlice slice)
    {
        if (!_state.TryGetValue(service, out var slices))
        {
            _state[service] = slices = new Dictionary<string, EndpointSlice>(StringComparer.Ordinal);
        }

        slices[slice.Metadata?.Name ?? ""] = slice;
    }

    private List<EndpointSlice> SlicesOf_NeedsLock(string service)
        => _state.TryGetValue(service, out var slices) ? [.. slices.Values] : [];

    /// <summary>
    /// The service a slice belongs to: its <c>kubernetes.io/service-name</c> label; without one, the only service the
    /// selection names (the API server sent it for that selector, as it would to a source of its own).
    /// </summary>
    private static string? ServiceOf(EndpointSlice slice, Selection selection)
        => slice.Metadata?.Labels is { } labels && labels.TryGetValue(EndpointSliceSource.ServiceNameLabel, out var service) && !string.IsNullOrEmpty(service)
            ? service
            : selection.Services is [var only] ? only : null;

    private static string Unrouted(int count, string first, string where)
        => string.Create(CultureInfo.InvariantCulture,
            $"skipped {count} EndpointSlice(s) {where} without a {EndpointSliceSource.ServiceNameLabel} label (first: '{KubernetesApiClient.Truncate(first, 253)}'); no service can be told they belong to it.");

    /// <summary>What one list of the hub selects: the services named, or (<see cref="Services"/> null) the whole namespace.</summary>
    internal sealed class Selection(string[]? services)
    {
        private readonly HashSet<string>? _set = services is null ? null : new HashSet<string>(services, StringComparer.Ordinal);

        public string[]? Services { get; } = services;

        public bool Covers(string service) => _set is null || _set.Contains(service);
    }

    /// <summary>Receives the shared loop's failures (its snapshots are routed by the source itself).</summary>
    private sealed class HubObserver(NamespaceWatchHub hub) : IEndpointObserver
    {
        public void OnEndpoints(IReadOnlyList<DiscoveredEndpoint> endpoints)
        {
        }

        public void OnError(Exception error) => hub.Failed(error);
    }
}

/// <summary>One service's seat on a <see cref="NamespaceWatchHub"/>: the messages the hub sends it.</summary>
internal sealed class NamespaceWatchMember : IDisposable
{
    private readonly Channel<HubMessage> _messages = Channel.CreateUnbounded<HubMessage>(new UnboundedChannelOptions { SingleReader = true });
    private NamespaceWatchHub? _hub;

    public NamespaceWatchMember(string service)
    {
        Service = service;
    }

    public string Service { get; }

    internal NamespaceWatchHub Hub
    {
        get => _hub ?? throw new ObjectDisposedException(nameof(NamespaceWatchMember));
        set => _hub = value;
    }

    /// <summary>Asks the hub for a snapshot of the service (now if it has one, else after its next list).</summary>
    public void RequestSnapshot() => Hub.RequestSnapshot(this);

    /// <summary>Reads the next message; a failure with another right behind it is dropped, so a member that was backing off does not replay a queue of stale failures.</summary>
    public async ValueTask<HubMessage> ReadAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var message = await _messages.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            if (message.Kind == HubMessageKind.Failure && _messages.Reader.TryPeek(out var next) && next.Kind == HubMessageKind.Failure)
            {
                continue;
            }

            return message;
        }
    }

    public void Send(HubMessage message) => _messages.Writer.TryWrite(message);

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _hub, null) is { } hub)
        {
            hub.Leave(this);
            _messages.Writer.TryComplete();
        }
    }
}

/// <summary>What a hub sends its members.</summary>
internal enum HubMessageKind
{
    Snapshot,
    Change,
    Progress,
    Problem,
    Reconnect,
    Relist,
    Failure,
}

/// <summary>One message from a hub to a member.</summary>
internal sealed class HubMessage
{
    public static readonly HubMessage Reconnect = new(HubMessageKind.Reconnect);

    public static readonly HubMessage Relist = new(HubMessageKind.Relist);

    private HubMessage(HubMessageKind kind)
    {
        Kind = kind;
    }

    public HubMessageKind Kind { get; }

    public IReadOnlyList<EndpointSlice> Slices { get; private init; } = [];

    public string? Type { get; private init; }

    public EndpointSlice? Item { get; private init; }

    public string? ResourceVersion { get; private init; }

    public string? Text { get; private init; }

    public Exception? Error { get; private init; }

    public static HubMessage Snapshot(IReadOnlyList<EndpointSlice> slices, string resourceVersion)
        => new(HubMessageKind.Snapshot) { Slices = slices, ResourceVersion = resourceVersion };

    public static HubMessage Change(string type, EndpointSlice item) => new(HubMessageKind.Change) { Type = type, Item = item };

    public static HubMessage Progress(string resourceVersion) => new(HubMessageKind.Progress) { ResourceVersion = resourceVersion };

    public static HubMessage Problem(string text) => new(HubMessageKind.Problem) { Text = text };

    public static HubMessage Failure(Exception error) => new(HubMessageKind.Failure) { Error = error };
}

/// <summary>The shared watches of one client factory: one hub per (cluster, namespace, encoding), alive while it has members.</summary>
internal sealed class NamespaceWatchHubs : IDisposable
{
    private readonly object _gate = new();
    private readonly Dictionary<HubKey, NamespaceWatchHub> _hubs = [];
    private readonly KubernetesClientFactory _clients;
    private readonly TimeProvider _timeProvider;
    private readonly ILoggerFactory _loggerFactory;

    public NamespaceWatchHubs(KubernetesClientFactory clients, TimeProvider timeProvider, ILoggerFactory loggerFactory)
    {
        _clients = clients;
        _timeProvider = timeProvider;
        _loggerFactory = loggerFactory;
    }

    /// <summary>Gets or sets the randomness of the shared loops (backoff jitter, watch timeout), or <see langword="null"/> for <see cref="Random.Shared"/>; a seam for tests.</summary>
    public Func<double>? Random { get; set; }

    /// <summary>Gets the number of shared watches running.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _hubs.Count;
            }
        }
    }

    /// <summary>Gets the hubs running (for tests and figures).</summary>
    public IReadOnlyList<NamespaceWatchHub> Hubs
    {
        get
        {
            lock (_gate)
            {
                return [.. _hubs.Values];
            }
        }
    }

    /// <summary>Joins <paramref name="service"/> to the shared watch of its namespace, starting one if none runs.</summary>
    /// <param name="service">The service name.</param>
    /// <param name="namespace">The namespace the name carried, or <see langword="null"/> for the configured one.</param>
    /// <param name="options">The options of the service; the first member's apply to the shared requests.</param>
    public NamespaceWatchMember Join(string service, string? @namespace, KubernetesSourceOptions options)
    {
        var key = new HubKey(options.KubeconfigPath, options.Context, @namespace ?? options.Namespace, options.Encoding);
        var member = new NamespaceWatchMember(service);
        NamespaceWatchHub? started = null;
        CancellationTokenSource? refresh;
        lock (_gate)
        {
            if (!_hubs.TryGetValue(key, out var hub))
            {
                hub = new NamespaceWatchHub(this, key, options, _clients, _timeProvider, _loggerFactory.CreateLogger("Lodestar.Kubernetes"), Random);
                _hubs.Add(key, hub);
                started = hub;
            }

            member.Hub = hub;
            refresh = hub.Add_NeedsOwnerLock(member);
        }

        started?.Start();
        refresh?.Cancel();
        return member;
    }

    /// <summary>Removes a member; the last one out stops the shared watch.</summary>
    internal void Leave(HubKey key, NamespaceWatchHub hub, NamespaceWatchMember member)
    {
        var stop = false;
        lock (_gate)
        {
            if (hub.Remove_NeedsOwnerLock(member) && _hubs.TryGetValue(key, out var current) && current == hub)
            {
                _hubs.Remove(key);
                stop = true;
            }
        }

        if (stop)
        {
            hub.Stop();
        }
    }

    public void Dispose()
    {
        List<NamespaceWatchHub> hubs;
        lock (_gate)
        {
            hubs = [.. _hubs.Values];
            _hubs.Clear();
        }

        foreach (var hub in hubs)
        {
            hub.Stop();
        }
    }

    /// <summary>What makes two services share a watch: the cluster, the namespace asked for, and the encoding.</summary>
    internal readonly record struct HubKey(string? Kubeconfig, string? Context, string? Namespace, KubernetesEncoding Encoding);
}
