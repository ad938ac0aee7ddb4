using System.Globalization;
using System.Net;
using System.Text.Json;
using Lodestar.Discovery;
using Lodestar.Internal;
using Lodestar.Kubernetes.Api.Internal;
using Microsoft.Extensions.Logging;

namespace Lodestar.Kubernetes.Discovery.Internal;

/// <summary>
/// Follows one service's EndpointSlices (<c>discovery.k8s.io/v1</c>) with client-go's reflector protocol: LIST in
/// pages, then WATCH from the list's resourceVersion with bookmarks; re-watch from the last seen resourceVersion when a
/// stream drops; re-list on 410 Gone; back off with jitter between failures.
/// </summary>
internal sealed partial class EndpointSliceSource : IEndpointSource
{
    private const string ServiceNameLabel = "kubernetes.io/service-name";

    // client-go's reflector asks the server to end a watch after a random 5 to 10 minutes, so that many clients do not
    // reconnect at the same moment.
    private static readonly TimeSpan s_minWatchTimeout = TimeSpan.FromMinutes(5);

    // A watch that ends this soon without any event is treated as a failure (client-go's "very short watch").
    private static readonly TimeSpan s_shortWatch = TimeSpan.FromSeconds(1);

    private readonly string _service;
    private readonly string? _namespace;
    private readonly KubernetesSourceOptions _options;
    private readonly KubernetesClientFactory _clients;
    private readonly TimeProvider _timeProvider;
    private readonly RandomSource _random;
    private readonly ILogger _logger;

    public EndpointSliceSource(string service, string? @namespace, KubernetesSourceOptions options, KubernetesClientFactory clients,
        TimeProvider timeProvider, RandomSource random, ILogger logger)
    {
        _service = service;
        _namespace = @namespace;
        _options = options;
        _clients = clients;
        _timeProvider = timeProvider;
        _random = random;
        _logger = logger;
    }

    public async Task RunAsync(IEndpointObserver observer, CancellationToken cancellationToken)
    {
        var backoff = new ExponentialBackoff(_options.RetryInitialDelay, _options.RetryMaxDelay, _random);
        var state = new LoopState(new EndpointSliceMerger(_options.PortName));
        while (!cancellationToken.IsCancellationRequested)
        {
            var failed = false;
            var where = $"service '{_service}'";
            try
            {
                var client = _clients.GetClient(_options);
                var ns = _namespace ?? _options.Namespace ?? client.Config.Namespace ?? "default";
                where = $"service '{_service}' in namespace '{ns}'";
                var collection = string.Concat("/apis/discovery.k8s.io/v1/namespaces/", Uri.EscapeDataString(ns), "/endpointslices?labelSelector=",
                    Uri.EscapeDataString(ServiceNameLabel + "=" + _service));
                if (state.ResourceVersion is null)
                {
                    await ListAsync(client, collection, state, observer, where, cancellationToken).ConfigureAwait(false);
                }

                failed = !await WatchAsync(client, collection, state, observer, where, backoff, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (KubernetesApiException ex) when (ex.StatusCode == HttpStatusCode.Gone)
            {
                // The resourceVersion we would resume from has been compacted away: only a fresh list is consistent.
                Log.Relisting(_logger, _service, ex.Message);
                state.ResourceVersion = null;
                failed = state.GoneInARow++ > 0;
            }
            catch (Exception ex)
            {
                failed = true;
                Log.Failed(_logger, _service, ex);
                observer.OnError(ex is KubernetesApiException api
                    ? new KubernetesApiException($"Kubernetes EndpointSlices of {where}: {api.Message}", api) { StatusCode = api.StatusCode, Server = api.Server }
                    : new KubernetesApiException($"Kubernetes EndpointSlices of {where}: {ex.Message}", ex));
            }

            if (failed)
            {
                try
                {
                    await _timeProvider.DelayAsync(backoff.NextDelay(), cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private async Task ListAsync(KubernetesApiClient client, string collection, LoopState state, IEndpointObserver observer, string where,
        CancellationToken cancellationToken)
    {
        var slices = new List<EndpointSlice>();
        string? continueToken = null;
        string? resourceVersion = null;
        var paged = true;
        for (var page = 0; ; page++)
        {
            if (page > 100_000)
            {
                throw new KubernetesApiException($"Listing {where} from {client.Config.DisplayName} did not end after {page} pages.");
            }

            var path = !paged ? collection
                : continueToken is null ? string.Concat(collection, "&limit=", _options.PageSize.ToString(CultureInfo.InvariantCulture))
                : string.Concat(collection, "&limit=", _options.PageSize.ToString(CultureInfo.InvariantCulture), "&continue=", Uri.EscapeDataString(continueToken));
            EndpointSliceList list;
            try
            {
                list = await client.GetAsync(path, KubernetesJsonContext.Default.EndpointSliceList, cancellationToken).ConfigureAwait(false);
            }
            catch (KubernetesApiException ex) when (ex.StatusCode == HttpStatusCode.Gone && continueToken is not null)
            {
                // The continue token expired mid-list; like client-go's pager, fall back to one unpaged list.
                Log.ContinueExpired(_logger, _service);
                slices.Clear();
                continueToken = null;
                paged = false;
                continue;
            }

            slices.AddRange(list.Items ?? []);
            resourceVersion = list.Metadata?.ResourceVersion;
            continueToken = list.Metadata?.Continue;
            if (!paged || string.IsNullOrEmpty(continueToken))
            {
                break;
            }
        }

        if (string.IsNullOrEmpty(resourceVersion))
        {
            throw new KubernetesApiException($"{client.Config.DisplayName} listed {where} without a resourceVersion, so it cannot be watched.");
        }

        var problems = new List<string>();
        var changed = state.Merger.ReplaceAll(slices, problems);
        Report(observer, problems, where);
        Log.Listed(_logger, _service, slices.Count, state.Merger.Current.Count, resourceVersion);
        state.ResourceVersion = resourceVersion;
        state.GoneInARow = 0;
        Publish(observer, state, changed);
    }

    /// <summary>Watches until the stream ends; returns <see langword="false"/> when that counts as a failure to back off from.</summary>
    private async Task<bool> WatchAsync(KubernetesApiClient client, string collection, LoopState state, IEndpointObserver observer, string where,
        ExponentialBackoff backoff, CancellationToken cancellationToken)
    {
        var timeout = s_minWatchTimeout + TimeSpan.FromSeconds(_random.Next((int)s_minWatchTimeout.TotalSeconds));
        var path = string.Concat(collection, "&watch=true&allowWatchBookmarks=true&resourceVersion=", Uri.EscapeDataString(state.ResourceVersion!),
            "&timeoutSeconds=", ((int)timeout.TotalSeconds).ToString(CultureInfo.InvariantCulture));

        // The server ends the watch after timeoutSeconds; if a broken network leaves the stream silently open, end it here.
        using var guard = new CancellationTokenSource(timeout + TimeSpan.FromSeconds(30), _timeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, guard.Token);
        var started = _timeProvider.GetTimestamp();
        var events = 0;
        WatchLineReader? reader = null;
        try
        {
            using var response = await client.WatchAsync(path, linked.Token).ConfigureAwait(false);
            Log.Watching(_logger, _service, state.ResourceVersion!);
            var stream = await response.Content.ReadAsStreamAsync(linked.Token).ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                reader = new WatchLineReader(stream);
                while (true)
                {
                    var (ok, line, truncated) = await reader.ReadLineAsync(linked.Token).ConfigureAwait(false);
                    if (!ok)
                    {
                        if (truncated)
                        {
                            Log.StreamCut(_logger, _service, state.ResourceVersion!);
                        }

                        break;
                    }

                    events++;
                    Handle(line.Span, state, observer, where, client);
                    if (_timeProvider.GetElapsedTime(started) >= _options.BackoffResetAfter)
                    {
                        backoff.Reset();
                    }
                }
            }
        }
        catch (OperationCanceledException) when (guard.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            Log.WatchGuardExpired(_logger, _service);
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException && !cancellationToken.IsCancellationRequested)
        {
            // The connection broke mid-stream; resume from the last resourceVersion seen.
            if (reader?.HasPartialLine == true)
            {
                Log.StreamCut(_logger, _service, state.ResourceVersion ?? "");
            }
            else
            {
                Log.StreamBroken(_logger, _service, state.ResourceVersion ?? "", ex.Message);
            }

            return events > 0;
        }
        finally
        {
            reader?.Dispose();
        }

        var lasted = _timeProvider.GetElapsedTime(started);
        if (lasted >= _options.BackoffResetAfter)
        {
            backoff.Reset();
        }

        return events > 0 || lasted >= s_shortWatch;
    }

    /// <summary>Applies one watch line. A malformed line is reported and skipped; the watch state is kept.</summary>
    private void Handle(ReadOnlySpan<byte> line, LoopState state, IEndpointObserver observer, string where, KubernetesApiClient? client)
    {
        WatchEvent? watchEvent;
        try
        {
            watchEvent = JsonSerializer.Deserialize(line, KubernetesJsonContext.Default.WatchEvent);
        }
        catch (JsonException ex)
        {
            Log.MalformedEvent(_logger, _service, ex.Message);
            observer.OnError(new KubernetesApiException(
                $"Kubernetes EndpointSlices of {where}: skipped a malformed watch event from {client?.Config.DisplayName ?? "the API server"} ({ex.Message}).", ex)
            {
                Server = client?.Config.Server,
            });
            return;
        }

        var item = watchEvent?.Object;
        switch (watchEvent?.Type)
        {
            case "ADDED" or "MODIFIED" when item is not null:
            {
                var problems = new List<string>();
                var changed = state.Merger.Apply(item, problems);
                Report(observer, problems, where);
                Advance(state, item);
                Publish(observer, state, changed);
                break;
            }

            case "DELETED" when item is not null:
                var removed = state.Merger.Remove(item.Metadata?.Name ?? "");
                Advance(state, item);
                Publish(observer, state, removed);
                break;
            case "BOOKMARK" when item is not null:
                Advance(state, item);
                break;
            case "ERROR":
                var code = item?.Code ?? 0;
                var message = $"{client?.Config.DisplayName ?? "The API server"} ended the watch of {where} with an error ({code} {item?.Reason}): {item?.Message}";
                throw new KubernetesApiException(message)
                {
                    StatusCode = code > 0 ? (HttpStatusCode)code : null,
                    Server = client?.Config.Server,
                };
            default:
                Log.UnknownEvent(_logger, _service, watchEvent?.Type ?? "(none)");
                break;
        }
    }

    private static void Advance(LoopState state, EndpointSlice item)
    {
        if (!string.IsNullOrEmpty(item.Metadata?.ResourceVersion))
        {
            state.ResourceVersion = item.Metadata.ResourceVersion;
            state.GoneInARow = 0;
        }
    }

    private static void Publish(IEndpointObserver observer, LoopState state, bool changed)
    {
        if (changed || !state.Published)
        {
            state.Published = true;
            observer.OnEndpoints(state.Merger.Current);
        }
    }

    private static void Report(IEndpointObserver observer, List<string> problems, string where)
    {
        foreach (var problem in problems)
        {
            observer.OnError(new KubernetesApiException($"Kubernetes EndpointSlices of {where}: {problem}"));
        }
    }

    /// <summary>What one run of the loop carries between lists and watches.</summary>
    internal sealed class LoopState(EndpointSliceMerger merger)
    {
        public EndpointSliceMerger Merger { get; } = merger;

        /// <summary>Gets or sets the resourceVersion to resume from, or <see langword="null"/> to list first.</summary>
        public string? ResourceVersion { get; set; }

        public bool Published { get; set; }

        public int GoneInARow { get; set; }
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
        public static partial void Relisting(ILogger logger, string service, string error);

        [LoggerMessage(206, LogLevel.Warning, "Skipped a malformed watch event of service {Service}: {Error}", EventName = "MalformedEvent")]
        public static partial void MalformedEvent(ILogger logger, string service, string error);

        [LoggerMessage(207, LogLevel.Debug, "Ignored a watch event of unknown type {Type} for service {Service}.", EventName = "UnknownEvent")]
        public static partial void UnknownEvent(ILogger logger, string service, string type);

        [LoggerMessage(208, LogLevel.Debug, "Listing or watching service {Service} failed; retrying with backoff.", EventName = "Failed")]
        public static partial void Failed(ILogger logger, string service, Exception exception);

        [LoggerMessage(209, LogLevel.Information, "The continue token of service {Service} expired mid-list; listing again without paging.", EventName = "ContinueExpired")]
        public static partial void ContinueExpired(ILogger logger, string service);

        [LoggerMessage(210, LogLevel.Debug, "The watch of service {Service} outlived its timeout without ending; starting a new one.", EventName = "WatchGuardExpired")]
        public static partial void WatchGuardExpired(ILogger logger, string service);
    }
}
