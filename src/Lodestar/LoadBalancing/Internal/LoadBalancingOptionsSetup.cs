using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Lodestar.LoadBalancing.Internal;

/// <summary>
/// Binds a service's <see cref="LoadBalancingOptions"/> from <c>Lodestar:LoadBalancing:Defaults</c>, then from
/// <c>Lodestar:LoadBalancing:Services:&lt;service&gt;</c>, when an <see cref="IConfiguration"/> is registered.
/// </summary>
internal sealed class LoadBalancingOptionsSetup(IServiceProvider services) : IConfigureNamedOptions<LoadBalancingOptions>
{
    public const string DefaultsPath = LodestarOptions.SectionName + ":" + LoadBalancingOptions.SectionName + ":Defaults";
    public const string ServicesPath = LodestarOptions.SectionName + ":" + LoadBalancingOptions.SectionName + ":Services";

    public void Configure(LoadBalancingOptions options) => Configure(Options.DefaultName, options);

    public void Configure(string? name, LoadBalancingOptions options)
    {
        var configuration = services.GetService<IConfiguration>();
        if (configuration is null)
        {
            return;
        }

        configuration.GetSection(DefaultsPath).Bind(options);
        if (!string.IsNullOrEmpty(name))
        {
            configuration.GetSection(ServicesPath).GetSection(name).Bind(options);
        }
    }
}

/// <summary>Checks the ranges of <see cref="LoadBalancingOptions"/>; messages name the service and the property.</summary>
internal sealed class LoadBalancingOptionsValidator(IServiceProvider services) : IValidateOptions<LoadBalancingOptions>
{
    public ValidateOptionsResult Validate(string? name, LoadBalancingOptions options)
    {
        var failures = new List<string>();
        var prefix = string.IsNullOrEmpty(name) ? nameof(LoadBalancingOptions) : $"{nameof(LoadBalancingOptions)} of service '{name}'";
        void Check(bool ok, string property, object value, string range)
        {
            if (!ok)
            {
                failures.Add(string.Create(CultureInfo.InvariantCulture, $"{prefix}: {property} is {value}; it must be {range}."));
            }
        }

        Check(options.ChoiceCount is >= 2 and <= 100, nameof(options.ChoiceCount), options.ChoiceCount, "between 2 and 100");
        Check(options.ActiveRequestBias is >= 0 and <= 10, nameof(options.ActiveRequestBias), options.ActiveRequestBias, "between 0 and 10");
        Check(options.PeakEwmaDecay >= TimeSpan.FromMilliseconds(100) && options.PeakEwmaDecay <= TimeSpan.FromMinutes(10), nameof(options.PeakEwmaDecay), options.PeakEwmaDecay, "between 100 ms and 10 minutes");
        Check(options.PeakEwmaDefaultRtt >= TimeSpan.Zero && options.PeakEwmaDefaultRtt <= TimeSpan.FromMinutes(1), nameof(options.PeakEwmaDefaultRtt), options.PeakEwmaDefaultRtt, "between 0 and 1 minute");
        Check(options.PeakEwmaFailurePenalty >= TimeSpan.Zero && options.PeakEwmaFailurePenalty <= TimeSpan.FromMinutes(1), nameof(options.PeakEwmaFailurePenalty), options.PeakEwmaFailurePenalty, "between 0 and 1 minute");
        Check(options.RingHashMaximumRingSize is >= 1 and <= 8 * 1024 * 1024, nameof(options.RingHashMaximumRingSize), options.RingHashMaximumRingSize, "between 1 and 8,388,608");
        Check(options.RingHashMinimumRingSize >= 1 && options.RingHashMinimumRingSize <= options.RingHashMaximumRingSize, nameof(options.RingHashMinimumRingSize), options.RingHashMinimumRingSize, "between 1 and RingHashMaximumRingSize");
        Check(options.HashBalanceFactor == 0 || (options.HashBalanceFactor >= 1 && double.IsFinite(options.HashBalanceFactor)), nameof(options.HashBalanceFactor), options.HashBalanceFactor, "0 (off) or at least 1");
        Check(options.MaglevTableSize is >= 7 and <= 5_000_011 && IsPrime(options.MaglevTableSize), nameof(options.MaglevTableSize), options.MaglevTableSize, "a prime between 7 and 5,000,011");
        Check(options.ZoneAwareMinimumEndpoints is >= 1 and <= 1_000_000, nameof(options.ZoneAwareMinimumEndpoints), options.ZoneAwareMinimumEndpoints, "between 1 and 1,000,000");
        Check(options.OverprovisioningFactor is >= 1 and <= 10, nameof(options.OverprovisioningFactor), options.OverprovisioningFactor, "between 1 and 10");
        Check(options.SlowStartWindow >= TimeSpan.Zero && options.SlowStartWindow <= TimeSpan.FromHours(1), nameof(options.SlowStartWindow), options.SlowStartWindow, "between 0 and 1 hour");
        Check(options.SlowStartAggression is >= 0.1 and <= 10, nameof(options.SlowStartAggression), options.SlowStartAggression, "between 0.1 and 10");
        Check(options.SlowStartMinimumWeightPercent is >= 1 and <= 100, nameof(options.SlowStartMinimumWeightPercent), options.SlowStartMinimumWeightPercent, "between 1 and 100");
        var total = 0.0;
        for (var i = 0; i < options.TrafficSplits.Count; i++)
        {
            var split = options.TrafficSplits[i];
            Check(split.Percent is >= 0 and <= 100, $"{nameof(options.TrafficSplits)}[{i}].{nameof(TrafficSplit.Percent)}", split.Percent, "between 0 and 100");
            Check(split.Match.Count > 0, $"{nameof(options.TrafficSplits)}[{i}].{nameof(TrafficSplit.Match)}", "empty", "at least one metadata pair");
            total += split.Percent;
        }

        Check(total <= 100, nameof(options.TrafficSplits), string.Create(CultureInfo.InvariantCulture, $"{total}% in total"), "at most 100% in total");
        if (options.Policy is not null)
        {
            var registered = services.GetServices<ILoadBalancingPolicy>().Select(p => p.Name).ToList();
            Check(registered.Contains(options.Policy, StringComparer.OrdinalIgnoreCase), nameof(options.Policy), $"'{options.Policy}'",
                $"a registered load-balancing policy ({string.Join(", ", registered)})");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    internal static bool IsPrime(int value)
    {
        if (value < 2)
        {
            return false;
        }

        for (var divisor = 2; (long)divisor * divisor <= value; divisor++)
        {
            if (value % divisor == 0)
            {
                return false;
            }
        }

        return true;
    }
}

/// <summary>
/// Validates at startup the load-balancing options of every service named in configuration (named options are
/// otherwise validated only when first used, on the request path). Runs with the <see cref="LodestarOptions"/> start-up
/// validation.
/// </summary>
internal sealed class LoadBalancingStartupValidator(IServiceProvider services) : IValidateOptions<LodestarOptions>
{
    public ValidateOptionsResult Validate(string? name, LodestarOptions options)
    {
        var monitor = services.GetRequiredService<IOptionsMonitor<LoadBalancingOptions>>();
        var names = new List<string> { Options.DefaultName };
        var configuration = services.GetService<IConfiguration>();
        if (configuration is not null)
        {
            names.AddRange(configuration.GetSection(LoadBalancingOptionsSetup.ServicesPath).GetChildren().Select(c => c.Key));
        }

        var failures = new List<string>();
        foreach (var service in names)
        {
            try
            {
                _ = monitor.Get(service);
            }
            catch (OptionsValidationException ex)
            {
                failures.AddRange(ex.Failures);
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
