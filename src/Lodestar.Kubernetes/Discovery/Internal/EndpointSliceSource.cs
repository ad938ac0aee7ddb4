using System.Globalization;
using System.Net;
using System.Text.Json;
using Lodestar.Discovery;
using Lodestar.Kubernetes.Api.Internal;
using Microsoft.Extensions.Logging;

namespace Lodestar.Kubernetes.Discovery.Internal;

/// <summary>
/// Follows one service's EndpointSlices (<c>discovery.k8s.io/v1</c>) with client-go's reflector protocol on the shared
/// list/watch loop: LIST in pages, then WATCH from the list's resourceVersion with bookmarks; re-watch from the last
/// seen resourceVersion when a stream ends or breaks; re-list on 410 Gone (an HTTP status or an ERROR event).
/// </summary>
/// <remarks>
/// <para>
/// The loop, its backoff and the backoff's reset rule belong to <see cref="ListWatchEndpointSource{TCursor}"/>; the
/// cursor is the resourceVersion. This class says how to list, how to watch from a resourceVersion and when to start
/// over, and reads what the API server sends as untrusted: each LIST answer and each watch event is read under a byte
/// cap, every piece of server text passes through the cluster's <see cref="SecretRedactor"/> before it reaches a
/// message or a log, and an object that cannot be read is reported and skipped, never applied in part.
/// </para>
/// <para>
/// Stalls: watches ask for bookmarks, which the API server sends about once a minute, so a stream silent for
/// <see cref="KubernetesSourceOptions.WatchStallTimeout"/> is ended by the loop and resumed from the last
/// resourceVersion. With detection off, the watch is ended 30 seconds after the timeout it asked the server for.
/// </para>
/// <para>
/// Three modes. Alone, the source lists and watches its service itself. As a member of a shared namespace watch
/// (<see cref="KubernetesSourceOptions.ShareNamespaceWatches"/>), it joins the <see cref="NamespaceWatchHub"/> of its
/// namespace while it runs, and its list and watch replay what the hub sends: its loop still owns its endpoints, its
/// problems, its backoff and its reconnect count, while stalls are detected once, on the shared stream. As the hub's
/// own loop, it lists and watches the services of the hub's selection and hands each object to the hub, which routes
/// it by the <c>kubernetes.io/service-name</c> label.
/// </para>
/// </remarks>
internal sealed partial class EndpointSliceSource : ListWatchEndpointSource<string>, IEndpointSource
{
    /// <summary>How often a kind of skipped watch event (unknown type, no object, malformed) is reported at most.</summary>
    internal static readonly TimeSpan ReportInterval = TimeSpan.FromMinutes(1);

    /// <summary>The label naming the service an EndpointSlice belongs to.</summary>
    internal const string ServiceNameLabel = "kubernetes.io/service-name";

    // A selector naming services is also bounded by its length: a request line of some kilobytes is what every proxy accepts.
    private const int MaxSelectorLength = 4096;

    // A service's slices hold at most 1,000 endpoints each and a cluster at most some 150,000 pods: a list that keeps
    // paging past these bounds is broken, not large.
    private const int MaxPages = 10_000;
    private const int MaxSlices = 50_000;

    // Distinct kinds of skipped events tracked for rate limiting; a server inventing new type names falls into one.
    private const int MaxReportKinds = 32;
    private const string OtherKind = "(other)";

    // client-go's reflector asks the server to end a watch after a random 5 to 10 minutes, so that many clients do not
    // reconnect at the same moment.
    private static readonly TimeSpan s_minWatchTimeout = TimeSpan.FromMinutes(5);

    // Without stall detection, a watch still open this long after its server-side timeout is ended by the client.
    private static readonly TimeSpan s_guardMargin = TimeSpan.FromSeconds(30);

    private readonly string? _namespace;
    private readonly KubernetesSourceOptions _options;
    private readonly KubernetesClientFactory _clients;
    private readonly Func<double> _random;
    private readonly EndpointSliceMerger _merger;
    private readonly Dictionary<string, ReportState> _reports = new(StringComparer.Ordinal);
    private readonly NamespaceWatchHubs? _shared;
    private readonly NamespaceWatchHub? _hub;
    private NamespaceWatchHub.Selection? _selection;
    private NamespaceWatchMember? _member;
    private KubernetesApiClient? _client;
    private string _where;
    private string _collection = "";

    /// <summary>Initializes the source.</summary>
    /// <param name="service">The service name.</param>
    /// <param name="namespace">The namespace the name carried, or <see langword="null"/> for the configured one.</param>
    /// <param name="options">The source's options; <see cref="KubernetesSourceOptions.Backoff"/> is copied.</param>
    /// <param name="clients">The shared API clients.</param>
    /// <param name="timeProvider">The clock of the loop, the stall detector and the report rate limit.</param>
    /// <param name="logger">The source's logger.</param>
    /// <param name="random">Numbers in [0, 1) for the backoff jitter and the watch timeout, or <see langword="null"/> for <see cref="Random.Shared"/>.</param>
    /// <param name="shared">The shared watches to join while running, or <see langword="null"/> to list and watch alone.</param>
    public EndpointSliceSource(string service, string? @namespace, KubernetesSourceOptions options, KubernetesClientFactory clients,
        TimeProvider timeProvider, ILogger logger, Func<double>? random = null, NamespaceWatchHubs? shared = null)
        : base(service, options.Backoff, timeProvider, logger, random)
    {
        _shared = shared;
        _namespace = @namespace;
        _options = options;
        _clients = clients;
        _random = random ?? Random.Shared.NextDouble;
        _merger = new EndpointSliceMerger(options.PortName);
        var ns = @namespace ?? options.Namespace;
        _where = ns is null ? $"service '{service}'" : $"service '{service}' in namespace '{ns}'";
    }

    /// <summary>Initializes the loop of a shared namespace watch.</summary>
    /// <param name="hub">The hub the loop feeds.</param>
    /// <param name="namespace">The namespace asked for, or <see langword="null"/> for the configured one.</param>
    /// <param name="options">The options of the hub's first member.</param>
    /// <param name="clients">The shared API clients.</param>
    /// <param name="timeProvider">The clock of the loop and the stall detector.</param>
    /// <param name="logger">The logger.</param>
    /// <param name="random">Numbers in [0, 1), or <see langword="null"/>.</param>
    internal EndpointSliceSource(NamespaceWatchHub hub, string? @namespace, KubernetesSourceOptions options, KubernetesClientFactory clients,
        TimeProvider timeProvider, ILogger logger, Func<double>? random)
        : base((@namespace ?? options.Namespace ?? "(default namespace)") + "/*", options.Backoff, timeProvider, logger, random)
    {
        _hub = hub;
        _namespace = @namespace;
        _options = options;
        _clients = clients;
        _random = random ?? Random.Shared.NextDouble;
        _merger = new EndpointSliceMerger(options.PortName);
        var ns = @namespace ?? options.Namespace;
        _where = ns is null ? "the namespace" : $"namespace '{ns}'";
    }

    /// <inheritdoc/>
    /// <remarks>A member of a shared watch has none of its own: the hub's loop detects a silent stream and tells every member.</remarks>
    protected override TimeSpan? StallTimeout => _shared is null && _options.WatchStallTimeout > TimeSpan.Zero ? _options.WatchStallTimeout : null;

    /// <inheritdoc/>
    /// <remarks>A member of a shared watch joins its namespace's hub for as long as it runs.</remarks>
    async Task IEndpointSource.RunAsync(IEndpointObserver observer, CancellationToken cancellationToken)
    {
        if (_shared is null)
        {
            await RunAsync(observer, cancellationToken).ConfigureAwait(false);
            return;
        }

        using var member = _shared.Join(ServiceName, _namespace, _options);
        _member = member;
        try
        {
            await RunAsync(observer, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _member = null;
        }
    }

    /// <inheritdoc/>
    protected override async Task<string> ListAsync(WatchContext<string> context, CancellationToken cancellationToken)
    {
        if (_shared is not null)
        {
            return await ListSharedAsync(context, cancellationToken).ConfigureAwait(false);
        }

        var selection = _hub?.BeginList();
        _selection = selection;
        var (client, collection) = Connect();
        var slices = new List<EndpointSlice>();
        string? continueToken = null;
        string? resourceVersion = null;
        var paged = true;
        var pageSize = _options.PageSize.ToString(CultureInfo.InvariantCulture);
        for (var page = 0; ; page++)
        {
            if (page >= MaxPages)
            {
                throw Failure(client, $"listing did not end after {page} pages; the list was not applied.");
            }

            var path = !paged ? collection
                : continueToken is null ? string.Concat(collection, "&limit=", pageSize)
                : string.Concat(collection, "&limit=", pageSize, "&continue=", Uri.EscapeDataString(continueToken));
            EndpointSliceList list;
            try
            {
                list = await client.ListAsync(path, _options.Encoding, _options.MaxListResponseBytes, cancellationToken).ConfigureAwait(false);
            }
            catch (KubernetesApiException ex) when (ex.StatusCode == HttpStatusCode.Gone && continueToken is not null)
            {
                // The continue token expired mid-list; like client-go's pager, fall back to one unpaged list.
                Log.ContinueExpired(Logger, ServiceName);
                slices.Clear();
                continueToken = null;
                paged = false;
                continue;
            }

            if (list.Items is { } items)
            {
                for (var i = 0; i < items.Count; i++)
                {
                    if (items[i] is null)
                    {
                        // A hole in the list hides which slice is gone: applying the rest could drop live endpoints.
                        throw Failure(client, $"the list holds a null item at position {slices.Count + i}; the list was not applied.");
                    }
                }

                slices.AddRange(items);
                if (slices.Count > MaxSlices)
                {
                    throw Failure(client, $"the list holds more than {MaxSlices} EndpointSlices for one service; the list was not applied.");
                }
            }

            resourceVersion = list.Metadata?.ResourceVersion;
            continueToken = list.Metadata?.Continue;
            if (!paged || string.IsNullOrEmpty(continueToken))
            {
                break;
            }
        }

        if (string.IsNullOrEmpty(resourceVersion))
        {
            throw Failure(client, "the list has no resourceVersion, so it cannot be watched; the list was not applied.");
        }

        if (_hub is not null)
        {
            // As a lone source does: a slice without a name hides which slice it is, so the whole list is refused.
            foreach (var slice in slices)
            {
                if (string.IsNullOrEmpty(slice.Metadata?.Name))
                {
                    throw Failure(client, $"the list holds {EndpointSliceMerger.Validate(slice)}; the list was not applied.");
                }
            }

            if (Logger.IsEnabled(LogLevel.Debug))
            {
                Log.SharedListed(Logger, ServiceName, slices.Count, selection!.Services?.Length ?? -1, client.Redact(resourceVersion));
            }

            _hub.Listed(selection!, slices, resourceVersion);
            return resourceVersion;
        }

        ApplyList(slices, context, client, resourceVersion);
        return resourceVersion;
    }

    /// <summary>Replaces the service's endpoints with a complete list of its slices; publishes when they changed or nothing was yet.</summary>
    private void ApplyList(IReadOnlyList<EndpointSlice> slices, WatchContext<string> context, KubernetesApiClient client, string resourceVersion)
    {
        var readable = new List<EndpointSlice>(slices.Count);
        List<string>? kept = null;
        foreach (var slice in slices)
        {
            if (EndpointSliceMerger.Validate(slice) is not { } problem)
            {
                readable.Add(slice);
                continue;
            }

            if (string.IsNullOrEmpty(slice.Metadata?.Name))
            {
                throw Failure(client, $"the list holds {problem}; the list was not applied.");
            }

            (kept ??= []).Add(slice.Metadata.Name);
            context.ReportError(Problem(client, $"skipped {problem} in the list; its previous endpoints stay in force."));
        }

        var problems = new List<string>();
        var changed = _merger.ReplaceAll(readable, problems, kept);
        ReportProblems(context, client, problems);
        if (Logger.IsEnabled(LogLevel.Debug))
        {
            Log.Listed(Logger, ServiceName, slices.Count, _merger.Current.Count, client.Redact(resourceVersion));
        }

        if (changed || !context.HasPublished)
        {
            context.Publish(_merger.Current);
        }
    }

    /// <summary>A member's list: the snapshot of its service the hub sends (at once when it has one, else after its next list).</summary>
    private async Task<string> ListSharedAsync(WatchContext<string> context, CancellationToken cancellationToken)
    {
        var member = _member ?? throw new InvalidOperationException("A member of a shared watch runs through IEndpointSource.RunAsync.");
        var (client, _) = Connect();
        member.RequestSnapshot();
        while (true)
        {
            var message = await member.ReadAsync(cancellationToken).ConfigureAwait(false);
            switch (message.Kind)
            {
                case HubMessageKind.Snapshot:
                    ApplyList(message.Slices, context, client, message.ResourceVersion!);
                    return message.ResourceVersion!;
                case HubMessageKind.Failure:
                    // The hub backs off and lists again on its own: this member reports the failure and waits for that
                    // list instead of sleeping a backoff of its own, which would leave it behind once the hub recovers.
                    context.ReportError(DescribeError(message.Error!));
                    break;

                // Changes, bookmarks and endings before the snapshot belong to a listing this member does not build on.
            }
        }
    }

    /// <summary>A member's watch: replays what the hub sends until the shared watch ends, fails or lists again.</summary>
    private async Task<WatchOutcome> WatchSharedAsync(WatchContext<string> context, CancellationToken cancellationToken)
    {
        var member = _member ?? throw new InvalidOperationException("A member of a shared watch runs through IEndpointSource.RunAsync.");
        var (client, _) = Connect();
        while (true)
        {
            var message = await member.ReadAsync(cancellationToken).ConfigureAwait(false);
            switch (message.Kind)
            {
                case HubMessageKind.Snapshot:
                    // The hub listed again (a service joined): the snapshot replaces this one's slices without a reconnect.
                    ApplyList(message.Slices, context, client, message.ResourceVersion!);
                    context.Advance(message.ResourceVersion!);
                    break;
                case HubMessageKind.Change:
                    ApplyChange(message.Type!, message.Item!, context, client);
                    break;
                case HubMessageKind.Progress:
                    context.KeepAlive();
                    context.Advance(message.ResourceVersion!);
                    break;
                case HubMessageKind.Problem:
                    context.ReportError(Problem(client, message.Text!));
                    break;
                case HubMessageKind.Reconnect:
                    // The shared loop paces its own short watches; the member follows at once (counted, no backoff).
                    context.KeepAlive();
                    return WatchOutcome.Reconnect;
                case HubMessageKind.Relist:
                    context.KeepAlive();
                    return WatchOutcome.Relist;
                case HubMessageKind.Failure:
                    // As in the list: the hub's own loop backs off and resumes; the member keeps its set and follows it.
                    context.ReportError(DescribeError(message.Error!));
                    break;
            }
        }
    }

    /// <inheritdoc/>
    protected override async Task<WatchOutcome> WatchAsync(string cursor, WatchContext<string> context, CancellationToken cancellationToken)
    {
        if (_shared is not null)
        {
            return await WatchSharedAsync(context, cancellationToken).ConfigureAwait(false);
        }

        if (_hub is null)
        {
            return await WatchStreamAsync(cursor, context, cancellationToken).ConfigureAwait(false);
        }

        // The hub's loop: a service that joined uncovered since the list makes it list again (a refresh, not a reconnect).
        var refresh = _hub.RefreshToken;
        if (_hub.NeedsRefresh)
        {
            return WatchOutcome.Refresh;
        }

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, refresh);
        WatchOutcome outcome;
        try
        {
            outcome = await WatchStreamAsync(cursor, context, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (refresh.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return WatchOutcome.Refresh;
        }

        _hub.Ended(outcome);
        return outcome;
    }

    private async Task<WatchOutcome> WatchStreamAsync(string cursor, WatchContext<string> context, CancellationToken cancellationToken)
    {
        var (client, collection) = Connect();
        var timeout = s_minWatchTimeout + TimeSpan.FromSeconds(Math.Min(299, (int)(Math.Clamp(_random(), 0, 1) * s_minWatchTimeout.TotalSeconds)));
        var path = string.Concat(collection, "&watch=true&allowWatchBookmarks=true&resourceVersion=", Uri.EscapeDataString(cursor),
            "&timeoutSeconds=", ((int)timeout.TotalSeconds).ToString(CultureInfo.InvariantCulture));

        // The loop's stall detector ends a silent stream; without it, end one that outlives the timeout it asked for.
        using var guard = StallTimeout is null ? new CancellationTokenSource(timeout + s_guardMargin, TimeProvider) : null;
        using var linked = guard is null ? null : CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, guard.Token);
        var token = linked?.Token ?? cancellationToken;
        IWatchEventReader? reader = null;
        try
        {
            HttpResponseMessage response;
            try
            {
                response = await client.WatchAsync(path, _options.Encoding, token).ConfigureAwait(false);
            }
            catch (KubernetesApiException ex) when (ex.StatusCode == HttpStatusCode.Gone)
            {
                // The resourceVersion to resume from has been compacted away: only a fresh list is consistent.
                Log.Expired(Logger, ServiceName, ex.Message);
                return WatchOutcome.Relist;
            }

            using (response)
            {
                if (Logger.IsEnabled(LogLevel.Debug))
                {
                    Log.Watching(Logger, ServiceName, client.Redact(cursor));
                }

                var protobuf = KubernetesProtobuf.IsProtobuf(client.MediaTypeOf(response, "WATCH " + client.Redact(path)));
                var stream = await response.Content.ReadAsStreamAsync(token).ConfigureAwait(false);
                await using (stream.ConfigureAwait(false))
                {
                    var description = $"{client.Config.DisplayName}, watch of EndpointSlices of {_where}";
                    reader = protobuf
                        ? new WatchFrameReader(stream, _options.MaxWatchEventBytes, description)
                        : new WatchLineReader(stream, maxLineBytes: _options.MaxWatchEventBytes, description: description);
                    while (true)
                    {
                        var (ok, line, truncated) = await reader.ReadEventAsync(token).ConfigureAwait(false);
                        if (!ok)
                        {
                            if (truncated)
                            {
                                Log.StreamCut(Logger, ServiceName, client.Redact(context.Cursor));
                            }

                            return WatchOutcome.Reconnect;
                        }

                        if (Handle(line.Span, protobuf, context, client) is { } outcome)
                        {
                            return outcome;
                        }
                    }
                }
            }
        }
        catch (OperationCanceledException) when (guard is { IsCancellationRequested: true } && !cancellationToken.IsCancellationRequested)
        {
            Log.WatchGuardExpired(Logger, ServiceName);
            return WatchOutcome.Reconnect;
        }
        catch (Exception ex) when (ex is not OperationCanceledException && token.IsCancellationRequested)
        {
            // Cancellation surfaced as a transport error: let the loop see it as what it is (a stop or a stall).
            throw new OperationCanceledException(token);
        }
        catch (RegistryResponseTooLargeException ex)
        {
            // The reader stopped at the cap; the loop backs off and resumes from the last resourceVersion.
            throw new KubernetesApiException(client.Redact(ex.Message), client.Sanitize(ex)) { Server = client.Config.Server };
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException)
        {
            // The connection broke mid-stream; resume from the last resourceVersion seen.
            if (reader?.HasPartialEvent == true)
            {
                Log.StreamCut(Logger, ServiceName, client.Redact(context.Cursor));
            }
            else
            {
                Log.StreamBroken(Logger, ServiceName, client.Redact(context.Cursor), client.Redact(ex.Message));
            }

            return WatchOutcome.Reconnect;
        }
        finally
        {
            reader?.Dispose();
        }
    }

    /// <inheritdoc/>
    /// <remarks>The hub's loop passes its failures on as they are: each member describes them for its own service.</remarks>
    protected override Exception DescribeError(Exception error)
    {
        if (_hub is not null)
        {
            return error;
        }

        var client = _client;
        var api = error as KubernetesApiException;
        var message = error.Message;
        if (client is not null && !message.Contains(client.Config.Server.GetLeftPart(UriPartial.Authority), StringComparison.Ordinal))
        {
            message = $"{message} ({client.Config.DisplayName})";
        }

        return new KubernetesApiException(Redact($"Kubernetes EndpointSlices of {_where}: {message}"), client?.Sanitize(error) ?? error)
        {
            StatusCode = api?.StatusCode,
            Server = api?.Server ?? client?.Config.Server,
        };
    }

    /// <summary>Applies one watch line; returns how the watch ends, or <see langword="null"/> to read on.</summary>
    private WatchOutcome? Handle(ReadOnlySpan<byte> line, bool protobuf, WatchContext<string> context, KubernetesApiClient client)
    {
        WatchEvent? watchEvent;
        try
        {
            watchEvent = protobuf ? KubernetesProtobuf.DecodeWatchEvent(line) : JsonSerializer.Deserialize(line, KubernetesJsonContext.Default.WatchEvent);
        }
        catch (Exception ex) when (ex is JsonException or InvalidDataException)
        {
            ReportSkipped(context, client, "malformed", $"skipped a malformed watch event ({ex.Message}).", malformed: true);
            return null;
        }

        var type = watchEvent?.Type;
        var item = watchEvent?.Object;
        switch (type)
        {
            case "ADDED" or "MODIFIED" or "DELETED" or "BOOKMARK" when item is null:
                ReportSkipped(context, client, type + "/no-object", $"skipped a {type} watch event without an object.");
                return null;
            case "ADDED" or "MODIFIED" or "DELETED":
            {
                if (WentBackwards(context, client, item!, type))
                {
                    return WatchOutcome.Relist;
                }

                if (_hub is null)
                {
                    ApplyChange(type, item!, context, client);
                    return null;
                }

                // The hub routes the object to its service's members, which check and apply it each for itself; the
                // shared cursor moves only past an object that can be read, as a lone source's does.
                _hub.Changed(type, item!, item!.Metadata?.ResourceVersion);
                if (type == "DELETED" ? !string.IsNullOrEmpty(item.Metadata?.Name) : EndpointSliceMerger.Validate(item) is null)
                {
                    Advance(context, item);
                }

                return null;
            }

            case "BOOKMARK":
                if (WentBackwards(context, client, item!, type))
                {
                    return WatchOutcome.Relist;
                }

                // A bookmark is the API server's heartbeat: it moves the resume point and proves the stream alive.
                context.KeepAlive();
                Advance(context, item!);
                if (_hub is not null && !string.IsNullOrEmpty(item!.Metadata?.ResourceVersion))
                {
                    _hub.Progress(item.Metadata.ResourceVersion);
                }

                if (Logger.IsEnabled(LogLevel.Trace))
                {
                    Log.Bookmark(Logger, ServiceName, client.Redact(context.Cursor));
                }

                return null;
            case "ERROR":
            {
                var code = item?.Code ?? 0;
                if (code == (int)HttpStatusCode.Gone)
                {
                    Log.Expired(Logger, ServiceName, client.Redact(item?.Message));
                    return WatchOutcome.Relist;
                }

                var message = item is null
                    ? $"{client.Config.DisplayName} ended the watch of {_where} with an ERROR event without a Status."
                    : $"{client.Config.DisplayName} ended the watch of {_where} with an error ({code} {KubernetesApiClient.Truncate(item.Reason, 128)}): {KubernetesApiClient.Truncate(item.Message)}";
                throw new KubernetesApiException(client.Redact(message))
                {
                    StatusCode = code > 0 ? (HttpStatusCode)code : null,
                    Server = client.Config.Server,
                };
            }

            default:
            {
                var shown = type is null ? "(none)" : "'" + KubernetesApiClient.Truncate(type, 64) + "'";
                ReportSkipped(context, client, "type/" + type, $"ignored a watch event of unknown type {shown}.");
                return null;
            }
        }
    }

    /// <summary>Applies one ADDED, MODIFIED or DELETED object to the service's endpoints and publishes when they changed.</summary>
    private void ApplyChange(string type, EndpointSlice item, WatchContext<string> context, KubernetesApiClient client)
    {
        if (type == "DELETED")
        {
            if (string.IsNullOrEmpty(item.Metadata?.Name))
            {
                context.ReportError(Problem(client, "skipped a DELETED watch event of an EndpointSlice without metadata.name."));
                return;
            }

            var removed = _merger.Remove(item.Metadata.Name);
            Advance(context, item);
            if (removed)
            {
                context.Publish(_merger.Current);
            }

            return;
        }

        if (EndpointSliceMerger.Validate(item) is { } problem)
        {
            // Not applied, and the cursor does not move: a resourceVersion from an object that cannot be read is not
            // trusted either.
            context.ReportError(Problem(client, $"skipped a {type} watch event of {problem}; its previous endpoints stay in force."));
            return;
        }

        var problems = new List<string>();
        var changed = _merger.Apply(item, problems);
        ReportProblems(context, client, problems);
        Advance(context, item);
        if (changed)
        {
            context.Publish(_merger.Current);
        }
    }

    /// <summary>
    /// Returns whether <paramref name="item"/> carries a resourceVersion lower than the cursor: the server's history went
    /// backwards (a store restored from a backup, a different server behind the same address), and only a fresh list is
    /// consistent. resourceVersions are opaque by the API's conventions; kube-apiserver's are etcd revisions, decimal
    /// integers, so they are compared only when both read as such.
    /// </summary>
    private bool WentBackwards(WatchContext<string> context, KubernetesApiClient client, EndpointSlice item, string type)
    {
        var next = item.Metadata?.ResourceVersion;
        if (context.Cursor is not { } cursor
            || !ulong.TryParse(next, NumberStyles.None, CultureInfo.InvariantCulture, out var nextVersion)
            || !ulong.TryParse(cursor, NumberStyles.None, CultureInfo.InvariantCulture, out var cursorVersion)
            || nextVersion >= cursorVersion)
        {
            return false;
        }

        var what = string.IsNullOrEmpty(item.Metadata?.Name) ? "a " + type + " event" : $"a {type} event of EndpointSlice '{item.Metadata.Name}'";
        Report(context, client, (
            $"resourceVersion {next} in {what} came after resourceVersion {cursor}: the server's history went backwards; listing again."));
        return true;
    }

    private static void Advance(WatchContext<string> context, EndpointSlice item)
    {
        if (!string.IsNullOrEmpty(item.Metadata?.ResourceVersion))
        {
            context.Advance(item.Metadata.ResourceVersion);
        }
    }

    /// <summary>Reports a skipped event at most once per <see cref="ReportInterval"/> per kind, counting the ones left out.</summary>
    private void ReportSkipped(WatchContext<string> context, KubernetesApiClient client, string kind, string message, bool malformed = false)
    {
        var now = TimeProvider.GetTimestamp();
        if (!_reports.ContainsKey(kind) && _reports.Count >= MaxReportKinds)
        {
            kind = OtherKind;
        }

        if (_reports.TryGetValue(kind, out var state) && TimeProvider.GetElapsedTime(state.LastReport, now) < ReportInterval)
        {
            state.Suppressed++;
            return;
        }

        var suppressed = state?.Suppressed ?? 0;
        _reports[kind] = new ReportState { LastReport = now };
        var text = suppressed == 0 ? message : string.Create(CultureInfo.InvariantCulture, $"{message} {suppressed} more like it since the last report were not reported.");
        var error = Problem(client, text);
        if (malformed)
        {
            Log.MalformedEvent(Logger, ServiceName, error.Message);
        }
        else
        {
            Log.SkippedEvent(Logger, ServiceName, error.Message);
        }

        Report(context, client, text);
    }

    /// <summary>
    /// Reports a problem that does not end the watch: to the observer, or from the hub's loop to every member, which
    /// names its own service in the report.
    /// </summary>
    private void Report(WatchContext<string> context, KubernetesApiClient client, string text)
    {
        if (_hub is not null)
        {
            _hub.Problem(text);
        }
        else
        {
            context.ReportError(Problem(client, text));
        }
    }

    private void ReportProblems(WatchContext<string> context, KubernetesApiClient client, List<string> problems)
    {
        foreach (var problem in problems)
        {
            context.ReportError(Problem(client, problem));
        }
    }

    /// <summary>An error naming the service, its namespace and the API server, with server text redacted.</summary>
    private KubernetesApiException Problem(KubernetesApiClient client, string text)
        => new(client.Redact($"Kubernetes EndpointSlices of {_where} from {client.Config.DisplayName}: {text}")) { Server = client.Config.Server };

    /// <summary>A failure of a list or a watch that the loop reports and backs off from.</summary>
    private KubernetesApiException Failure(KubernetesApiClient client, string text)
        => new(client.Redact($"{client.Config.DisplayName} sent an unusable list of EndpointSlices of {_where} (GET {_collection}): {text}")) { Server = client.Config.Server };

    private string Redact(string? text) => (_client is { } client ? client.Redact(text) : SecretRedactor.Default.Redact(text)) ?? "";

    private (KubernetesApiClient Client, string Collection) Connect()
    {
        var client = _clients.GetClient(_options);
        _client = client;
        var ns = _namespace ?? _options.Namespace ?? client.Config.Namespace ?? "default";
        _where = _hub is null ? $"service '{ServiceName}' in namespace '{ns}'" : $"namespace '{ns}'";
        var collection = string.Concat("/apis/discovery.k8s.io/v1/namespaces/", Uri.EscapeDataString(ns), "/endpointslices?labelSelector=",
            Uri.EscapeDataString(Selector()));
        _collection = collection;
        return (client, collection);
    }

    /// <summary>
    /// The label selector: this service; or the hub's services (<c>=</c> for one, <c>in (...)</c> for several); or, for
    /// the whole namespace or a selector too long to send, every slice that belongs to a service.
    /// </summary>
    private string Selector()
    {
        if (_hub is null)
        {
            return ServiceNameLabel + "=" + ServiceName;
        }

        var services = _selection?.Services;
        if (services is null || services.Length == 0)
        {
            return ServiceNameLabel;
        }

        var selector = services.Length == 1
            ? ServiceNameLabel + "=" + services[0]
            : string.Concat(ServiceNameLabel, " in (", string.Join(',', services), ")");
        return selector.Length > MaxSelectorLength ? ServiceNameLabel : selector;
    }

    /// <summary>When a kind of skipped event was last reported, and how many were left out since.</summary>
    private sealed class ReportState
    {
        public long LastReport { get; init; }

        public int Suppressed { get; set; }
    }

    private static partial class Log
    {
        [LoggerMessage(201, LogLevel.Debug, "Listed service {Service}: {Slices} EndpointSlices, {Endpoints} routable endpoints at resourceVersion {ResourceVersion}.", EventName = "Listed")]
        public static partial void Listed(ILogger logger, string service, int slices, int endpoints, string resourceVersion);

        [LoggerMessage(202, LogLevel.Debug, "Watching EndpointSlices of service {Service} from resourceVersion {ResourceVersion}.", EventName = "Watching")]
        public static partial void Watching(ILogger logger, string service, string resourceVersion);

        [LoggerMessage(203, LogLevel.Information, "The watch of service {Service} was cut mid-event; resuming from resourceVersion {ResourceVersion}.", EventName = "StreamCut")]
        public static partial void StreamCut(ILogger logger, string service, string resourceVersion);

        [LoggerMessage(204, LogLevel.Information, "The watch of service {Service} broke; resuming from resourceVersion {ResourceVersion}: {Error}", EventName = "StreamBroken")]
        public static partial void StreamBroken(ILogger logger, string service, string resourceVersion, string error);

        [LoggerMessage(205, LogLevel.Information, "The resourceVersion of service {Service} expired; listing again: {Error}", EventName = "Relisting")]
        public static partial void Expired(ILogger logger, string service, string error);

        [LoggerMessage(206, LogLevel.Warning, "Skipped a malformed watch event of service {Service}: {Error}", EventName = "MalformedEvent")]
        public static partial void MalformedEvent(ILogger logger, string service, string error);

        [LoggerMessage(207, LogLevel.Debug, "Skipped a watch event of service {Service}: {Error}", EventName = "UnknownEvent")]
        public static partial void SkippedEvent(ILogger logger, string service, string error);

        [LoggerMessage(209, LogLevel.Information, "The continue token of service {Service} expired mid-list; listing again without paging.", EventName = "ContinueExpired")]
        public static partial void ContinueExpired(ILogger logger, string service);

        [LoggerMessage(211, LogLevel.Trace, "Bookmark on the watch of service {Service}: resuming from resourceVersion {ResourceVersion}.", EventName = "Bookmark")]
        public static partial void Bookmark(ILogger logger, string service, string resourceVersion);

        [LoggerMessage(212, LogLevel.Debug, "Listed the shared watch {Watch}: {Slices} EndpointSlices for {Services} services (-1: the whole namespace) at resourceVersion {ResourceVersion}.", EventName = "SharedListed")]
        public static partial void SharedListed(ILogger logger, string watch, int slices, int services, string resourceVersion);

        [LoggerMessage(210, LogLevel.Debug, "The watch of service {Service} outlived its timeout without ending; starting a new one.", EventName = "WatchGuardExpired")]
        public static partial void WatchGuardExpired(ILogger logger, string service);
    }
}
