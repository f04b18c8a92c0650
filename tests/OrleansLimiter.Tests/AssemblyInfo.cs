// Tests share two CPU cores with the Redis servers and silo processes they start: one at a time
// keeps timings and command counts free of interference between test classes.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
