using System.Diagnostics;
using System.Globalization;
using Lodestar.Endpoints;
using Lodestar.Kubernetes.Api.Internal;

namespace Lodestar.Kubernetes.Discovery.Internal;

/// <summary>
/// Merges the EndpointSlices of one service into its routable endpoints, incrementally: applying a slice costs in
/// proportion to that slice (old and new contribution), never to the whole service, and the merged list is cached
/// until the next change.
/// </summary>
/// <remarks>
/// <para>Routing rules (kube-proxy's): an endpoint is routable when <c>conditions.ready</c> is not false; when no
/// endpoint of the service is ready, endpoints that are <c>serving</c> and <c>terminating</c> are used instead. An
/// address listed by several slices (an endpoint moving between slices) counts once.</para>
/// <para>State: per slice, its contribution (the endpoints it offers); per address, a holder listing which slices offer
/// it and which version of it is in the ready and fallback sets. Both sets are indexed lists, so add, remove and
/// replace are O(1). Not thread-safe: one merger per watch loop.</para>
/// </remarks>
internal sealed class EndpointSliceMerger
{
    /// <summary>Metadata key of the node hosting the endpoint.</summary>
    public const string NodeKey = "k8s.node";

    /// <summary>Metadata key of the pod behind the endpoint (its targetRef).</summary>
    public const string PodKey = "k8s.pod";

    /// <summary>Metadata key of the pod's namespace.</summary>
    public const string NamespaceKey = "k8s.namespace";

    /// <summary>Metadata key of the endpoint's hostname.</summary>
    public const string HostnameKey = "k8s.hostname";

    /// <summary>Metadata key of the topology hints (<c>hints.forZones</c>), comma-joined.</summary>
    public const string HintZonesKey = "k8s.hints.zones";

    /// <summary>Metadata key set to <c>true</c> on terminating endpoints.</summary>
    public const string TerminatingKey = "k8s.terminating";

    private readonly string? _portName;
    private readonly Dictionary<string, Contribution[]> _slices = new(StringComparer.Ordinal);
    private readonly Dictionary<DiscoveredEndpoint, Holder> _holders = [];
    private readonly IndexedSet _ready = new();
    private readonly IndexedSet _fallback = new();
    private readonly List<Holder> _touched = [];
    private readonly Dictionary<string, string> _strings = new(StringComparer.Ordinal);
    private DiscoveredEndpoint[]? _merged;
    private int _stamp;

    public EndpointSliceMerger(string? portName)
    {
        _portName = string.IsNullOrEmpty(portName) ? null : portName;
    }

    /// <summary>Gets the number of slices known.</summary>
    public int SliceCount => _slices.Count;

    /// <summary>Gets the routable endpoints now: the ready ones, or the serving-and-terminating ones when none is ready. Cached.</summary>
    public IReadOnlyList<DiscoveredEndpoint> Current => _merged ??= (_ready.Count > 0 ? _ready : _fallback).ToArray();

    /// <summary>Adds or replaces one slice.</summary>
    /// <param name="slice">The slice as the API server sent it.</param>
    /// <param name="problems">Receives what is wrong with the slice (missing port, bad address), if anything.</param>
    /// <returns><see langword="true"/> when <see cref="Current"/> changed.</returns>
    public bool Apply(EndpointSlice slice, List<string>? problems)
    {
        var name = slice.Metadata?.Name ?? "";
        var next = Build(slice, name, problems);
        _slices.TryGetValue(name, out var previous);
        if (previous is not null && IsSame(previous, next))
        {
            return false;
        }

        return Change(name, previous, next);
    }

    /// <summary>Removes one slice.</summary>
    /// <returns><see langword="true"/> when <see cref="Current"/> changed.</returns>
    public bool Remove(string sliceName)
        => _slices.TryGetValue(sliceName, out var previous) && Change(sliceName, previous, null);

    /// <summary>Replaces every slice with a freshly listed set; slices not in it (nor in <paramref name="keep"/>) are removed.</summary>
    /// <param name="slices">The slices listed.</param>
    /// <param name="problems">Receives what is wrong with the slices, if anything.</param>
    /// <param name="keep">Names of slices that were listed but could not be read: their previous contribution stays.</param>
    /// <returns><see langword="true"/> when <see cref="Current"/> changed.</returns>
    public bool ReplaceAll(IReadOnlyList<EndpointSlice> slices, List<string>? problems, IReadOnlyCollection<string>? keep = null)
    {
        var changed = false;
        var names = new HashSet<string>(keep ?? [], StringComparer.Ordinal);
        foreach (var slice in slices)
        {
            names.Add(slice.Metadata?.Name ?? "");
            changed |= Apply(slice, problems);
        }

        foreach (var name in _slices.Keys.Where(n => !names.Contains(n)).ToList())
        {
            changed |= Remove(name);
        }

        return changed;
    }

    /// <summary>
    /// Checks that a slice as decoded can be read whole: a name, and no null where the API has an object or a string
    /// (an endpoint, an address, a port, a zone hint). Returns what is wrong, naming the entry, or <see langword="null"/>.
    /// </summary>
    /// <remarks>
    /// A slice with such a hole is not applied at all: applying the rest would drop an endpoint nobody removed, so its
    /// previous contribution stays in force until the server sends a readable version.
    /// </remarks>
    public static string? Validate(EndpointSlice slice)
    {
        if (string.IsNullOrEmpty(slice.Metadata?.Name))
        {
            return "an EndpointSlice without metadata.name";
        }

        var name = slice.Metadata.Name;
        if (slice.Endpoints is { } endpoints)
        {
            for (var i = 0; i < endpoints.Count; i++)
            {
                if (endpoints[i] is not { } endpoint)
                {
                    return Describe(name, i, "is null");
                }

                if (endpoint.Addresses is { } addresses)
                {
                    for (var j = 0; j < addresses.Count; j++)
                    {
                        if (string.IsNullOrEmpty(addresses[j]))
                        {
                            return Describe(name, i, string.Create(CultureInfo.InvariantCulture, $"has a null or empty addresses[{j}]"));
                        }
                    }
                }

                if (endpoint.Hints?.ForZones is { } zones && zones.Any(z => z is null))
                {
                    return Describe(name, i, "has a null hints.forZones entry");
                }
            }
        }

        if (slice.Ports is { } ports)
        {
            for (var i = 0; i < ports.Count; i++)
            {
                if (ports[i] is null)
                {
                    return string.Create(CultureInfo.InvariantCulture, $"EndpointSlice '{name}' has a null ports[{i}]");
                }
            }
        }

        return null;

        static string Describe(string name, int index, string problem)
            => string.Create(CultureInfo.InvariantCulture, $"EndpointSlice '{name}' endpoints[{index}] {problem}");
    }

    private bool Change(string sliceName, Contribution[]? previous, Contribution[]? next)
    {
        var readyBefore = _ready.Count > 0;
        var readyChanged = false;
        var fallbackChanged = false;
        _stamp++;
        _touched.Clear();
        foreach (var contribution in previous ?? [])
        {
            var holder = _holders[contribution.Endpoint];
            holder.RemoveSlice(sliceName);
            Touch(holder);
        }

        foreach (var contribution in next ?? [])
        {
            if (!_holders.TryGetValue(contribution.Endpoint, out var holder))
            {
                holder = new Holder { Key = contribution.Endpoint };
                _holders.Add(contribution.Endpoint, holder);
            }

            holder.Entries.Add((sliceName, contribution));
            Touch(holder);
        }

        foreach (var holder in _touched)
        {
            readyChanged |= Settle(_ready, holder.FindReady(), ref holder.InReady);
            fallbackChanged |= Settle(_fallback, holder.FindFallback(), ref holder.InFallback);
            if (holder.Entries.Count == 0)
            {
                Debug.Assert(holder.InReady is null && holder.InFallback is null, "an unreferenced address is in no set");
                _holders.Remove(holder.Key);
            }
        }

        _touched.Clear();
        if (next is null)
        {
            _slices.Remove(sliceName);
        }
        else
        {
            _slices[sliceName] = next;
        }

        var readyAfter = _ready.Count > 0;
        var changed = readyBefore != readyAfter || (readyAfter ? readyChanged : fallbackChanged);
        if (changed)
        {
            _merged = null;
        }

        return changed;
    }

    private void Touch(Holder holder)
    {
        if (holder.Stamp != _stamp)
        {
            holder.Stamp = _stamp;
            _touched.Add(holder);
        }
    }

    private static bool Settle(IndexedSet set, DiscoveredEndpoint? wanted, ref DiscoveredEndpoint? current)
    {
        if (wanted is null)
        {
            if (current is null)
            {
                return false;
            }

            set.Remove(current);
            current = null;
            return true;
        }

        if (current is null)
        {
            set.Add(wanted);
            current = wanted;
            return true;
        }

        if (current.IsIdenticalTo(wanted))
        {
            return false;
        }

        set.Replace(wanted);
        current = wanted;
        return true;
    }

    private static bool IsSame(Contribution[] a, Contribution[] b)
    {
        if (a.Length != b.Length)
        {
            return false;
        }

        for (var i = 0; i < a.Length; i++)
        {
            if (a[i].Ready != b[i].Ready || a[i].Fallback != b[i].Fallback || !a[i].Endpoint.IsIdenticalTo(b[i].Endpoint))
            {
                return false;
            }
        }

        return true;
    }

    private Contribution[] Build(EndpointSlice slice, string name, List<string>? problems)
    {
        var endpoints = slice.Endpoints;
        if (endpoints is null || endpoints.Count == 0)
        {
            return [];
        }

        if (!TryChoosePort(slice, name, problems, out var port, out var scheme))
        {
            return [];
        }

        var result = new List<Contribution>(endpoints.Count);
        foreach (var endpoint in endpoints)
        {
            var address = endpoint.Addresses is { Count: > 0 } addresses ? addresses[0] : null;
            if (string.IsNullOrEmpty(address))
            {
                continue;
            }

            var conditions = endpoint.Conditions;
            // The API says a missing ready condition means ready.
            var ready = conditions?.Ready != false;
            var fallback = !ready && conditions?.Serving == true && conditions.Terminating == true;
            if (!ready && !fallback)
            {
                continue;
            }

            var metadata = BuildMetadata(endpoint);
            if (!DiscoveredEndpoint.TryCreate(address, port, scheme, 1, Intern(endpoint.Zone), metadata, 0, out var created, out var error))
            {
                problems?.Add($"EndpointSlice '{name}' lists an endpoint Lodestar cannot use: {error}.");
                continue;
            }

            result.Add(new Contribution(created, ready, fallback));
        }

        return result.ToArray();
    }

    private bool TryChoosePort(EndpointSlice slice, string name, List<string>? problems, out int port, out string? scheme)
    {
        port = 0;
        scheme = null;
        var ports = slice.Ports ?? [];
        SlicePort? chosen = null;
        if (_portName is not null)
        {
            chosen = ports.FirstOrDefault(p => string.Equals(p.Name, _portName, StringComparison.Ordinal));
            if (chosen is null)
            {
                problems?.Add($"EndpointSlice '{name}' has no port named '{_portName}' (ports: {Describe(ports)}).");
                return false;
            }
        }
        else if (ports.Count == 1)
        {
            chosen = ports[0];
        }
        else
        {
            problems?.Add(ports.Count == 0
                ? $"EndpointSlice '{name}' has endpoints but no port."
                : $"EndpointSlice '{name}' has {ports.Count} ports ({Describe(ports)}); set PortName to choose one.");
            return false;
        }

        if (chosen.Port is not { } number || number is < 1 or > 65535)
        {
            problems?.Add($"EndpointSlice '{name}' has port '{chosen.Name}' without a valid port number.");
            return false;
        }

        port = number;
        scheme = chosen.AppProtocol?.ToLowerInvariant() switch
        {
            "https" => "https",
            "http" => "http",
            _ => null,
        };
        return true;
    }

    private static string Describe(List<SlicePort> ports)
        => ports.Count == 0 ? "none" : string.Join(", ", ports.Select(p => string.IsNullOrEmpty(p.Name)
            ? "unnamed " + p.Port?.ToString(CultureInfo.InvariantCulture)
            : p.Name + " " + p.Port?.ToString(CultureInfo.InvariantCulture)));

    private Dictionary<string, string>? BuildMetadata(SliceEndpoint endpoint)
    {
        Dictionary<string, string>? metadata = null;
        Add(ref metadata, NodeKey, Intern(endpoint.NodeName));
        Add(ref metadata, HostnameKey, endpoint.Hostname);
        if (endpoint.TargetRef is { Kind: "Pod" } target)
        {
            Add(ref metadata, PodKey, target.Name);
            Add(ref metadata, NamespaceKey, Intern(target.Namespace));
        }

        if (endpoint.Hints?.ForZones is { Count: > 0 } zones)
        {
            Add(ref metadata, HintZonesKey, Intern(string.Join(",", zones.Select(z => z.Name).Where(z => !string.IsNullOrEmpty(z)))));
        }

        if (endpoint.Conditions?.Terminating == true)
        {
            Add(ref metadata, TerminatingKey, "true");
        }

        return metadata;

        static void Add(ref Dictionary<string, string>? metadata, string key, string? value)
        {
            if (!string.IsNullOrEmpty(value))
            {
                (metadata ??= new Dictionary<string, string>(4, StringComparer.Ordinal))[key] = value;
            }
        }
    }

    /// <summary>Shares repeated strings (zones, node names, namespaces) so 10,000 endpoints do not hold 10,000 copies.</summary>
    private string? Intern(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return value;
        }

        if (_strings.TryGetValue(value, out var shared))
        {
            return shared;
        }

        if (_strings.Count < 10_000)
        {
            _strings.Add(value, value);
        }

        return value;
    }

    private readonly record struct Contribution(DiscoveredEndpoint Endpoint, bool Ready, bool Fallback);

    /// <summary>Which slices offer one address, and which version of it each set holds.</summary>
    private sealed class Holder
    {
        public DiscoveredEndpoint? InReady;
        public DiscoveredEndpoint? InFallback;

        public List<(string Slice, Contribution Contribution)> Entries { get; } = new(1);

        /// <summary>Gets the dictionary key of this holder (the first version seen).</summary>
        public required DiscoveredEndpoint Key { get; init; }

        public int Stamp { get; set; }

        public void RemoveSlice(string slice)
        {
            for (var i = Entries.Count - 1; i >= 0; i--)
            {
                if (string.Equals(Entries[i].Slice, slice, StringComparison.Ordinal))
                {
                    Entries.RemoveAt(i);
                }
            }
        }

        public DiscoveredEndpoint? FindReady()
        {
            foreach (var (_, contribution) in Entries)
            {
                if (contribution.Ready)
                {
                    return contribution.Endpoint;
                }
            }

            return null;
        }

        public DiscoveredEndpoint? FindFallback()
        {
            foreach (var (_, contribution) in Entries)
            {
                if (contribution.Fallback)
                {
                    return contribution.Endpoint;
                }
            }

            return null;
        }
    }

    /// <summary>A list with O(1) add, remove (swap with the last) and replace by endpoint identity.</summary>
    private sealed class IndexedSet
    {
        private readonly List<DiscoveredEndpoint> _items = [];
        private readonly Dictionary<DiscoveredEndpoint, int> _index = [];

        public int Count => _items.Count;

        public void Add(DiscoveredEndpoint endpoint)
        {
            _index.Add(endpoint, _items.Count);
            _items.Add(endpoint);
        }

        public void Remove(DiscoveredEndpoint endpoint)
        {
            var index = _index[endpoint];
            var last = _items.Count - 1;
            if (index != last)
            {
                var moved = _items[last];
                _items[index] = moved;
                _index[moved] = index;
            }

            _items.RemoveAt(last);
            _index.Remove(endpoint);
        }

        public void Replace(DiscoveredEndpoint endpoint) => _items[_index[endpoint]] = endpoint;

        public DiscoveredEndpoint[] ToArray() => _items.ToArray();
    }
}
