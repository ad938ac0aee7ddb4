using System.Globalization;
using System.Numerics;
using Lodestar.Internal;

namespace Lodestar.LoadBalancing.Internal;

/// <summary>
/// Ketama-style consistent hashing (Envoy's <c>RING_HASH</c>) with bounded loads (Mirrokni, Thorup, Zadimoghaddam,
/// "Consistent Hashing with Bounded Loads", 2016).
/// </summary>
/// <remarks>
/// Each endpoint owns points on a 64-bit ring, XXH64 of <c>address_i</c>, in proportion to its weight; a key goes to the
/// first point clockwise from its hash. Unlike Envoy, the number of points per unit of weight is rounded up to a power of
/// two, so adding or removing one endpoint rarely changes the points of the others and only about 1/N of keys move.
/// With bounded loads, an endpoint whose in-flight requests reach <c>ceil(factor × (total + 1) × weight share)</c> is
/// skipped and the walk goes on clockwise.
/// </remarks>
internal sealed class RingHashPolicy(RandomSource random) : ILoadBalancingPolicy
{
    public string Name => LoadBalancingPolicies.RingHash;

    /// <summary>Gets the service-wide load, which bounded loads compare each endpoint's in-flight count with.</summary>
    public EndpointStatistics Statistics => EndpointStatistics.ServiceLoad;

    public EndpointPicker CreatePicker(LoadBalancingContext context)
    {
        var endpoints = context.Endpoints.ToArray();
        var options = context.Options;
        long totalWeight = 0;
        var minWeight = int.MaxValue;
        foreach (var endpoint in endpoints)
        {
            var weight = Math.Max(1, endpoint.Endpoint.Weight);
            totalWeight += weight;
            minWeight = Math.Min(minWeight, weight);
        }

        var maxRing = Math.Clamp(options.RingHashMaximumRingSize, 1, 8 * 1024 * 1024);
        var minRing = Math.Clamp(options.RingHashMinimumRingSize, 1, maxRing);

        // Points for the lightest endpoint: enough for the minimum ring size, rounded up to a power of two (stability).
        var basePoints = (double)BitOperations.RoundUpToPowerOf2((uint)Math.Max(1, Math.Ceiling((double)minRing * minWeight / totalWeight)));
        var ringSize = basePoints * totalWeight / minWeight;
        if (ringSize > maxRing)
        {
            basePoints *= maxRing / ringSize;
        }

        var counts = new int[endpoints.Length];
        var total = 0;
        for (var i = 0; i < endpoints.Length; i++)
        {
            counts[i] = Math.Max(1, (int)Math.Round(basePoints * Math.Max(1, endpoints[i].Endpoint.Weight) / minWeight));
            total += counts[i];
        }

        var hashes = new ulong[total];
        var owners = new int[total];
        var position = 0;
        Span<char> buffer = stackalloc char[300];
        for (var i = 0; i < endpoints.Length; i++)
        {
            var address = endpoints[i].Endpoint.Address;
            address.CopyTo(buffer);
            buffer[address.Length] = '_';
            for (var replica = 0; replica < counts[i]; replica++)
            {
                replica.TryFormat(buffer[(address.Length + 1)..], out var written, default, CultureInfo.InvariantCulture);
                hashes[position] = XxHash64.HashChars(buffer[..(address.Length + 1 + written)]);
                owners[position] = i;
                position++;
            }
        }

        Array.Sort(hashes, owners);
        var shares = new double[endpoints.Length];
        for (var i = 0; i < endpoints.Length; i++)
        {
            shares[i] = (double)Math.Max(1, endpoints[i].Endpoint.Weight) / totalWeight;
        }

        return new RingHashPicker(endpoints, hashes, owners, shares, new HashKeyExtractor(options), random, options.HashBalanceFactor);
    }

    internal sealed class RingHashPicker(EndpointState[] endpoints, ulong[] hashes, int[] owners, double[] shares, HashKeyExtractor keys,
        RandomSource random, double balanceFactor) : EndpointPicker
    {
        /// <summary>Gets the number of points on the ring.</summary>
        public int RingSize => hashes.Length;

        /// <summary>
        /// Returns the exact share of the hash space each endpoint owns (the arcs that end at its points), which is the
        /// share of keys it gets from a uniform key hash with bounded loads idle.
        /// </summary>
        internal double[] KeyShares()
        {
            var shares = new double[endpoints.Length];
            for (var i = 0; i < hashes.Length; i++)
            {
                // The arc ending at point i starts after point i-1 (the last point, wrapping, for the first).
                var arc = i == 0 ? hashes[0] + (ulong.MaxValue - hashes[^1]) + 1 : hashes[i] - hashes[i - 1];
                shares[owners[i]] += arc / 18446744073709551616.0;
            }

            return shares;
        }

        public override EndpointState Pick(in PickContext context)
        {
            if (!keys.TryGetHash(in context, out var hash))
            {
                hash = RandomHash(random);
            }

            return endpoints[PickIndex(hash)];
        }

        internal int PickIndex(ulong hash)
        {
            var position = Array.BinarySearch(hashes, hash);
            if (position < 0)
            {
                position = ~position;
            }

            if (position == hashes.Length)
            {
                position = 0;
            }

            if (balanceFactor <= 0)
            {
                return owners[position];
            }

            // Bounded loads: walk clockwise past endpoints that already carry their share of the load.
            var totalPlusOne = endpoints[0].Tracking.InFlight + 1.0;
            for (var step = 0; step < hashes.Length; step++)
            {
                var owner = owners[position];
                var capacity = Math.Ceiling(balanceFactor * totalPlusOne * shares[owner]);
                if (endpoints[owner].InFlight < capacity)
                {
                    return owner;
                }

                if (++position == hashes.Length)
                {
                    position = 0;
                }
            }

            return owners[position];
        }
    }

    internal static ulong RandomHash(RandomSource random) => (ulong)(random.NextDouble() * ulong.MaxValue);
}

/// <summary>
/// Google's Maglev consistent hashing (Eisenbud et al., NSDI 2016) as Envoy builds it: a lookup table of prime size
/// filled from per-endpoint permutations, weighted by visiting an endpoint on a share of the rounds. A pick is one
/// table read.
/// </summary>
internal sealed class MaglevPolicy(RandomSource random) : ILoadBalancingPolicy
{
    public string Name => LoadBalancingPolicies.Maglev;

    public EndpointPicker CreatePicker(LoadBalancingContext context)
    {
        var endpoints = context.Endpoints.ToArray();
        var size = context.Options.MaglevTableSize;
        var table = BuildTable(endpoints, size);
        return new MaglevPicker(endpoints, table, new HashKeyExtractor(context.Options), random);
    }

    internal static int[] BuildTable(EndpointState[] endpoints, int size)
    {
        var count = endpoints.Length;
        var offsets = new long[count];
        var skips = new long[count];
        var next = new long[count];
        var weights = new long[count];
        var targets = new long[count];
        long maxWeight = 1;
        for (var i = 0; i < count; i++)
        {
            var address = endpoints[i].Endpoint.Address;
            offsets[i] = (long)(XxHash64.HashChars(address, 0) % (ulong)size);
            skips[i] = (long)(XxHash64.HashChars(address, 1) % (ulong)(size - 1)) + 1;
            weights[i] = Math.Max(1, endpoints[i].Endpoint.Weight);
            maxWeight = Math.Max(maxWeight, weights[i]);
        }

        Array.Fill(targets, maxWeight);
        var table = new int[size];
        Array.Fill(table, -1);
        var filled = 0;
        for (long iteration = 1; filled < size; iteration++)
        {
            for (var i = 0; i < count && filled < size; i++)
            {
                // An endpoint of the largest weight claims a slot every round; one of a third of it every third round.
                if (iteration * weights[i] < targets[i])
                {
                    continue;
                }

                targets[i] += maxWeight;
                long slot;
                do
                {
                    slot = (offsets[i] + (next[i]++ * skips[i])) % size;
                }
                while (table[slot] >= 0);

                table[slot] = i;
                filled++;
            }
        }

        return table;
    }

    internal sealed class MaglevPicker(EndpointState[] endpoints, int[] table, HashKeyExtractor keys, RandomSource random) : EndpointPicker
    {
        public override EndpointState Pick(in PickContext context)
        {
            if (!keys.TryGetHash(in context, out var hash))
            {
                hash = RingHashPolicy.RandomHash(random);
            }

            return endpoints[PickIndex(hash)];
        }

        internal int PickIndex(ulong hash) => table[(int)(hash % (ulong)table.Length)];
    }
}
