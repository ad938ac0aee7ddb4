using Lodestar.Internal;

namespace Lodestar.LoadBalancing.Internal;

internal sealed class RoundRobinPolicy(RandomSource random) : ILoadBalancingPolicy
{
    public string Name => LoadBalancingPolicies.RoundRobin;

    public EndpointPicker CreatePicker(LoadBalancingContext context)
        => new RoundRobinPicker(context.Endpoints.ToArray(), (uint)random.Next(int.MaxValue));

    internal sealed class RoundRobinPicker(EndpointState[] endpoints, uint start) : EndpointPicker
    {
        // uint keeps the modulo non-negative when the counter wraps.
        private uint _next = start;

        public override EndpointState Pick(HttpRequestMessage? request)
            => endpoints[(int)(Interlocked.Increment(ref _next) % (uint)endpoints.Length)];
    }
}

internal sealed class RandomPolicy(RandomSource random) : ILoadBalancingPolicy
{
    public string Name => LoadBalancingPolicies.Random;

    public EndpointPicker CreatePicker(LoadBalancingContext context) => new RandomPicker(context.Endpoints.ToArray(), random);

    private sealed class RandomPicker(EndpointState[] endpoints, RandomSource random) : EndpointPicker
    {
        public override EndpointState Pick(HttpRequestMessage? request) => endpoints[random.Next(endpoints.Length)];
    }
}

internal sealed class LeastRequestPolicy(RandomSource random) : ILoadBalancingPolicy
{
    public string Name => LoadBalancingPolicies.LeastRequest;

    public EndpointPicker CreatePicker(LoadBalancingContext context) => new PowerOfTwoPicker(context.Endpoints.ToArray(), random);

    private sealed class PowerOfTwoPicker(EndpointState[] endpoints, RandomSource random) : EndpointPicker
    {
        public override EndpointState Pick(HttpRequestMessage? request)
        {
            // Two distinct random candidates (Mitzenmacher's power of two choices); the fewer in flight wins.
            var count = endpoints.Length;
            var first = random.Next(count);
            var second = random.Next(count - 1);
            if (second >= first)
            {
                second++;
            }

            var a = endpoints[first];
            var b = endpoints[second];
            return b.InFlight < a.InFlight ? b : a;
        }
    }
}
